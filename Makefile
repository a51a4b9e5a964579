# Laneway developer tasks. `make run` starts the whole stack locally; `make test` runs the suite.

PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed

.PHONY: venv browser run test bench eval

## venv: create $(VENV) with Python 3.11+ and install Laneway editable with test extras
venv: $(STAMP)

# Reinstalls only when pyproject.toml changes (the stamp is newer otherwise).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Laneway needs Python 3.11+, $(PYTHON) is " + sys.version)'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[test]'
	touch $@

## browser: Debian's Chromium for the browser tests (Playwright drives it; no browser download)
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium package (browser tests)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y chromium; else sudo apt-get install -y chromium; fi; }

## run: Redis (embedded unless REDIS_URL is set), Twilio stand-in, web and worker; Ctrl-C stops all
run: venv
	$(VENV)/bin/laneway run

## test: the whole suite
test: venv browser
	$(VENV)/bin/pytest -q

## bench: controller turns/s and round trips per turn, end to end vs bare RQ (Procfile processes), memory and latency at scale (private Redis); writes bench.json
bench: venv
	$(VENV)/bin/laneway bench

## eval: play the dev conversation scripts through the real pipeline (private Redis) and print the per-step table and summary
eval: venv
	$(VENV)/bin/laneway eval --split $(or $(SPLIT),dev)
