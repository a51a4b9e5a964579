# Laneway developer tasks. `make run` starts the whole stack locally; `make test` runs the suite.
# Each target installs what it uses, from nothing: the service and the developer tools need only
# Laneway's runtime dependencies; the test targets add the `test` extra and Debian's Chromium.

PYTHON ?= python3
VENV   ?= .venv
VENV_PYTHON  := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP    := $(VENV)/.installed-test

.PHONY: install venv browser run test chaos fuzz bench eval

## install: create $(VENV) with Python 3.11+ and install Laneway editable, runtime dependencies only
install: $(RUNTIME_STAMP)

## venv: the development venv: `install` plus the test extra (pytest, fakeredis, hypothesis, schemathesis, Playwright, honcho, trustme)
venv: $(TEST_STAMP)

$(VENV_PYTHON):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Laneway needs Python 3.11+, $(PYTHON) is " + sys.version)'
	$(PYTHON) -m venv $(VENV)

# Each stamp reinstalls only when pyproject.toml changes (the stamp is newer otherwise).
$(RUNTIME_STAMP): pyproject.toml | $(VENV_PYTHON)
	$(VENV)/bin/pip install -e .
	touch $@

# The test install includes the runtime one, so it refreshes both stamps.
$(TEST_STAMP): pyproject.toml | $(VENV_PYTHON)
	$(VENV)/bin/pip install -e '.[test]'
	touch $(RUNTIME_STAMP) $@

## browser: Debian's Chromium for the browser tests (Playwright drives it; no browser download); apt-get update first on a fresh machine
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium package (browser tests)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

## run: Redis (embedded unless REDIS_URL is set), Twilio stand-in, web and worker; Ctrl-C stops all
run: install
	$(VENV)/bin/laneway run

## test: the whole suite, except the chaos runs over a minute long (marker `chaos`)
test: venv browser
	$(VENV)/bin/pytest -q -m "not chaos"

## chaos: every chaos test, the long ones included, with a 40-kill storm (real processes killed, Redis paused or restarted; about 5 minutes)
LANEWAY_CHAOS_ROUNDS ?= 40
chaos: venv
	LANEWAY_CHAOS_ROUNDS=$(LANEWAY_CHAOS_ROUNDS) $(VENV)/bin/pytest -q -s tests/integration/test_chaos.py

## fuzz: the property tests, random and with 10x the examples (HYPOTHESIS_PROFILE=fuzz); keep what they find as @example
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest -q -m property

## bench: controller turns/s and round trips per turn, Laneway vs the naive Flask+RQ pipeline end to end (Procfile processes, alternating rounds) and one worker alone, memory at scale, voice, triggers, durability, NLU, pacing; writes bench.json (--profile: py-spy flame graphs)
bench: install
	$(VENV)/bin/laneway bench

## eval: play the dev conversation scripts through the real pipeline (private Redis) and print the per-step table and summary
eval: install
	$(VENV)/bin/laneway eval --split $(or $(SPLIT),dev)
