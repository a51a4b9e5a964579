"""``laneway eval``: play conversation scripts through the real pipeline and score every step.

Each script (format: :mod:`devtools.evals.scripts`) is played against
the real stack on a private Redis (:class:`devtools.redis_server.RedisServer`),
in this process:

* customer texts are Twilio Messaging webhooks (SMS or WhatsApp), signed with
  the tenant's auth token, posted to the Flask app (``create_app``);
* calls go through the Twilio Voice webhooks: the greeting (``POST
  /twilio/voice``), each utterance as ``SpeechResult`` (``/twilio/voice/turn``),
  the reply fetched from the poll endpoint (``/twilio/voice/poll``, so no
  thread has to wait), and the call's end (``/twilio/voice/status``);
* operator actions go through the takeover API with the tenant's operator key;
* form activity goes through the hosted form's own endpoint (``POST
  /f/<form_token>/activity``);
* after each step the real RQ worker (:class:`jobs.worker.LanewayWorker`,
  JSON serializer) runs in burst mode: it drains the conversation and sends
  the replies through the official twilio client to the Twilio stand-in.

What a step produced is read back from the store (state, transcript, outbox
delivery status). The turn's routes are observed by wrapping the router the
controller is given (:class:`RouteRecorder`); no production code changes for
it. The database is flushed and the tenants reloaded between conversations.

The summary: steps passed (of the steps that check something), conversations
fully passed, and the fallback share: the AI's replies that are one of the
tenant's "don't know" replies (:func:`default_fallback_texts`), of all its
replies. ``--llm`` turns each tenant's LLM on (router and every lane's agent)
against ``LANEWAY_EVAL_OPENAI_BASE_URL`` and judges each step's ``rubric``
with the same endpoint.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import click
import requests
from rq.serializers import JSONSerializer
from twilio.request_validator import RequestValidator

from agents.base import Route
from agents.guard import LAST_RESORT_TEXT
from agents.templates import FALLBACK_STEMS
from devtools.evals.scripts import (
    SPLITS,
    Check,
    Expect,
    LoadedScript,
    Observed,
    Reply,
    Script,
    ScriptError,
    Step,
    check_step,
    is_fallback,
    load_suite,
)

REPO_ROOT: Final = Path(__file__).parents[2]
DEFAULT_SUITE: Final = REPO_ROOT / "tests" / "conversations"
DEFAULT_TENANTS: Final = REPO_ROOT / "tenants.example.yaml"
PUBLIC_BASE_URL: Final = "https://laneway.eval"
"""The public URL the webhooks are signed for (the app is in this process; nothing listens there)."""
OPERATOR_NAME: Final = "eval-operator"
ACCOUNT_SID: Final = "AC" + "0" * 32
VOICE_REPLY_WAIT_S: Final = 0.001
"""The voice turn answers at once (holding); the runner fetches the reply from the poll endpoint after the worker ran."""
SUITE_CONFIG: Final = "suite.yaml"
"""Optional file in the suite's directory: ``fallback_texts: [...]`` added to the defaults."""
EVAL_ENV_BASE_URL: Final = "LANEWAY_EVAL_OPENAI_BASE_URL"
EVAL_ENV_API_KEY: Final = "LANEWAY_EVAL_OPENAI_API_KEY"
EVAL_ENV_MODEL: Final = "LANEWAY_EVAL_OPENAI_MODEL"
JUDGE_TIMEOUT_S: Final = 30.0

log = logging.getLogger(__name__)


class EvalError(click.ClickException):
    """The suite cannot be run (bad scripts, unknown tenant, missing LLM settings)."""


# -- observing routes ----------------------------------------------------------------------


class RouteRecorder:
    """The controller's router, wrapped: records every :class:`Route` it returns, in order.

    ``router(turn, handoff_to=None) -> Route`` is the controller's injected
    router contract (:class:`jobs.controller.TurnController`); the recorder
    keeps it and remembers each decision with the conversation it was for.
    """

    def __init__(self, router: Callable[..., Route]) -> None:
        self.router = router
        self.routes: list[tuple[str, Route]] = []

    def __call__(self, turn, *args, **kwargs) -> Route:
        decided = self.router(turn, *args, **kwargs)
        self.routes.append((turn.state.conversation_id, decided))
        return decided

    def take(self) -> list[Route]:
        """Return the routes recorded since the last call, and forget them."""
        taken = [r for _, r in self.routes]
        self.routes.clear()
        return taken


# -- the fallback list ---------------------------------------------------------------------


def default_fallback_texts(tenants: Sequence[Any]) -> list[str]:
    """The "don't know" replies: how every built-in fallback begins, the guard's last resort, each tenant's ``fallback_text``.

    Read from the code at run time (:data:`agents.templates.FALLBACK_STEMS`,
    in every built-in language), so a reworded fallback stays counted. A
    tenant that overrides the fallback templates lists its wordings in the
    suite's ``suite.yaml`` (``fallback_texts``) or with ``--fallback-text``.
    """
    texts = [*FALLBACK_STEMS, LAST_RESORT_TEXT]
    for tenant in tenants:
        fallback = getattr(tenant, "fallback_text", "")
        if fallback and fallback not in texts:
            texts.append(fallback)
    return texts


def suite_fallback_texts(root: Path) -> list[str]:
    """The ``fallback_texts`` of ``root``'s ``suite.yaml`` (none without the file)."""
    import yaml

    path = (root if root.is_dir() else root.parent) / SUITE_CONFIG
    if not path.is_file():
        return []
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    texts = doc.get("fallback_texts") or []
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise EvalError(f"{path}: fallback_texts is a list of strings")
    return texts


# -- results -------------------------------------------------------------------------------


@dataclass
class StepResult:
    """One played step: what was said, what came back, and its checks (``scored``: it checked something)."""

    index: int
    kind: str
    said: str
    channel: str
    checks: list[Check] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    lane: str | None = None
    intent: str | None = None
    status: str | None = None
    routes: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def scored(self) -> bool:
        return bool(self.checks) or self.error is not None

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


@dataclass
class ConversationResult:
    """One played script."""

    script: Script
    split: str
    steps: list[StepResult] = field(default_factory=list)
    ai_replies: int = 0
    fallback_replies: int = 0
    seconds: float = 0.0

    @property
    def scored_steps(self) -> list[StepResult]:
        return [s for s in self.steps if s.scored]

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.scored_steps)


@dataclass
class Summary:
    """Figures over a set of conversations."""

    conversations: int
    conversations_passed: int
    steps: int
    steps_passed: int
    ai_replies: int
    fallback_replies: int

    @property
    def step_pass_rate(self) -> float:
        return self.steps_passed / self.steps if self.steps else 0.0

    @property
    def conversation_pass_rate(self) -> float:
        return self.conversations_passed / self.conversations if self.conversations else 0.0

    @property
    def fallback_share(self) -> float:
        return self.fallback_replies / self.ai_replies if self.ai_replies else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "step_pass_rate": round(self.step_pass_rate, 4),
            "conversation_pass_rate": round(self.conversation_pass_rate, 4),
            "fallback_share": round(self.fallback_share, 4),
        }


def summarize(results: Sequence[ConversationResult]) -> Summary:
    """Add up ``results``."""
    return Summary(
        conversations=len(results),
        conversations_passed=sum(r.passed for r in results),
        steps=sum(len(r.scored_steps) for r in results),
        steps_passed=sum(sum(s.passed for s in r.scored_steps) for r in results),
        ai_replies=sum(r.ai_replies for r in results),
        fallback_replies=sum(r.fallback_replies for r in results),
    )


def breakdown(results: Sequence[ConversationResult], key: Callable[[ConversationResult], str]) -> dict[str, Summary]:
    """Summaries grouped by ``key`` (split, tenant, channel, pattern)."""
    groups: dict[str, list[ConversationResult]] = defaultdict(list)
    for result in results:
        groups[key(result)].append(result)
    return {name: summarize(group) for name, group in sorted(groups.items())}


# -- the harness ---------------------------------------------------------------------------


class Harness:
    """The real stack in this process: private Redis, Twilio stand-in, Flask app, runtime, burst worker.

    Args:
        tenants_path: the tenants YAML to load.
        llm: turn every tenant's LLM on (router and each lane's agent) against
            ``llm_base_url`` with ``llm_api_key``.
        llm_model: model name (``None``: each tenant's own, else ``gpt-4o-mini``).

    Use as a context manager; :meth:`reset` empties the database between conversations.

    Raises:
        EvalError: the tenants file is invalid or the LLM settings are missing.
    """

    def __init__(
        self, tenants_path: Path = DEFAULT_TENANTS, *, llm: bool = False, llm_base_url: str | None = None,
        llm_api_key: str | None = None, llm_model: str | None = None,
    ) -> None:
        from state.errors import ConfigError
        from state.tenant_config import parse_tenants_yaml

        try:
            self.tenants_file = parse_tenants_yaml(Path(tenants_path).read_text(encoding="utf-8"))
        except (OSError, ConfigError) as exc:
            raise EvalError(f"{tenants_path}: {exc}") from exc
        self.llm = llm
        self.llm_base_url = llm_base_url
        self.llm_api_key = llm_api_key
        self.llm_model = llm_model
        if llm:
            if not llm_base_url:
                raise EvalError(f"--llm needs {EVAL_ENV_BASE_URL} (an OpenAI-compatible base URL ending /v1)")
            self.tenants_file = self.tenants_file.model_copy(
                update={"tenants": [self._with_llm(t) for t in self.tenants_file.tenants]}
            )
        self.tenants = {t.tenant_id: t for t in self.tenants_file.tenants}
        self._stops: list[Callable[[], None]] = []
        self._worker = None

    def _with_llm(self, tenant):
        from state.tenant_config import LlmConfig, SecretRef

        key = SecretRef(env=EVAL_ENV_API_KEY, dev_value=self.llm_api_key or "laneway-eval")
        update = {"enabled": True, "api_key": key, "lanes": list(tenant.lanes)}
        if self.llm_model:
            update["model"] = self.llm_model
        llm = tenant.llm.model_copy(update=update) if tenant.llm else LlmConfig(**update)
        return tenant.model_copy(update={"llm": llm})

    def __enter__(self) -> "Harness":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        """Start Redis and the stand-in, build the app and the worker runtime."""
        from core.prices import ModelPrice
        from core.settings import Settings
        from devtools.redis_server import RedisServer
        from devtools.twilio_standin import start_standin_thread
        from jobs import runtime as job_runtime
        from jobs.runtime import build_runtime
        from service import create_app

        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's access log
        server = RedisServer().start()
        self._stops.append(server.stop)
        standin = start_standin_thread()
        self._stops.append(standin.stop)
        self.standin_url = standin.url
        overrides: dict[str, Any] = dict(
            redis_url=server.url,
            public_base_url=PUBLIC_BASE_URL,
            twilio_api_url=standin.url,
            voice_reply_wait_s=VOICE_REPLY_WAIT_S,
            delivery_retry_intervals_s=[0, 0],
            drain_retry_intervals_s=[0],
            inbound_contact_rate="10000/minute",
            tenant_cache_ttl_s=0,
        )
        if self.llm:
            overrides["openai_base_url"] = self.llm_base_url
        settings = Settings(**overrides)
        if self.llm:
            prices = dict(settings.llm_prices)
            for tenant in self.tenants.values():
                prices.setdefault(tenant.llm.model, ModelPrice(prompt_usd_per_1k_tokens=0, completion_usd_per_1k_tokens=0))
            settings = settings.model_copy(update={"llm_prices": prices})
        self.settings = settings
        self.redis = server.client()
        self.runtime = build_runtime(settings, queue_connection=self.redis, state_connection=self.redis)
        self.runtime.tenants.cache_ttl_s = 0
        self.recorder = RouteRecorder(self.runtime.controller.router)
        self.runtime.controller.router = self.recorder
        job_runtime.install(self.runtime)
        self._stops.append(lambda: job_runtime.install(None))
        app = create_app({"SETTINGS": settings, "QUEUE_REDIS": self.redis, "STATE_REDIS": self.redis, "TESTING": True})
        app.extensions["laneway"].tenants.cache_ttl_s = 0
        self.client = app.test_client()

    def stop(self) -> None:
        """Stop everything started, newest first."""
        while self._stops:
            try:
                self._stops.pop()()
            except Exception:  # noqa: BLE001 - stopping the rest matters more
                log.exception("stopping the eval harness")

    def pause(self, tenant_id: str, conversation_ids: Sequence[str], seconds: float) -> None:
        """Let ``seconds`` pass for the conversations: every time in their stored documents moves that far back.

        The clocks stay real (the webhooks' ``received_at``, the controller's
        ``now``), so an agent comparing any two of them sees the pause. Keys:
        each conversation's ``state`` (HGET, then HSET of ``doc``; the worker is
        idle between steps, so nothing writes meanwhile; ``version`` unchanged).
        """
        from state.keys import ConversationKeys
        from state.models import SessionState
        from state.store import decode_document, encode_document, parse_document

        for conversation_id in conversation_ids:
            key = ConversationKeys(tenant_id, conversation_id).state
            raw = self.redis.hget(key, "doc")
            if not raw:
                continue
            doc = parse_document(decode_document(raw)).model_dump(mode="json")
            shifted = SessionState.model_validate(_shift_times(doc, timedelta(seconds=seconds)))
            self.redis.hset(key, "doc", encode_document(shifted))

    def reset(self) -> None:
        """Empty the database, reload the tenants, forget recorded routes."""
        self.redis.flushdb()
        self.runtime.tenants.load_file(self.tenants_file, self.settings.env)
        self.recorder.take()
        requests.delete(f"{self.standin_url}/_standin/messages", timeout=5)

    def work(self) -> None:
        """Run the real RQ worker (see :func:`burst_worker_class`) in burst mode until the queue is empty."""
        from jobs import runtime as job_runtime

        job_runtime.install(self.runtime)  # the jobs of this process run on this harness (another may have run since)
        if self._worker is None:
            self._worker = burst_worker_class()([self.runtime.queue], connection=self.redis, serializer=JSONSerializer)
        self._worker.work(burst=True, with_scheduler=False, logging_level="WARNING")


def _shift_times(value: Any, by: timedelta) -> Any:
    """Return a JSON document with every time (keys ``at``, ``*_at``, ``*_since``) moved ``by`` into the past."""
    if isinstance(value, list):
        return [_shift_times(v, by) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if isinstance(item, str) and (key == "at" or key.endswith(("_at", "_since"))):
            try:
                item = (datetime.fromisoformat(item) - by).isoformat()
            except ValueError:
                pass
        else:
            item = _shift_times(item, by)
        out[key] = item
    return out


@functools.cache
def burst_worker_class():
    """Laneway's worker without RQ's command channel, for one burst per step.

    RQ's worker subscribes to a pub/sub channel for commands (stop a job,
    shut down) in a thread, and joining that thread costs about 80 ms per
    burst; nothing sends commands to a worker that lives for one step. Jobs
    run exactly as in :class:`jobs.worker.LanewayWorker`.
    """
    from jobs.worker import LanewayWorker

    class BurstWorker(LanewayWorker):
        def subscribe(self) -> None:
            self.pubsub_thread = None

        def unsubscribe(self) -> None:
            pass

    return BurstWorker


# -- playing one conversation --------------------------------------------------------------


@dataclass
class _Call:
    """A call in progress: its ``CallSid`` and the next utterance number."""

    call_sid: str
    n: int = 1


class Player:
    """Plays scripts on a :class:`Harness` and scores them.

    Args:
        harness: a started harness.
        fallback_texts: the "don't know" replies.
        judge: ``judge(rubric, transcript) -> (ok, reason)`` for steps with a
            ``rubric`` (``None``: rubrics are not judged).
    """

    def __init__(self, harness: Harness, fallback_texts: Sequence[str], judge: Callable[[str, str], tuple[bool, str]] | None = None) -> None:
        self.h = harness
        self.fallback_texts = list(fallback_texts)
        self.judge = judge

    # signing and addresses

    def _auth_token(self, tenant) -> str:
        return tenant.twilio.auth_token.resolve(self.h.settings.env)

    def _operator_key(self, tenant) -> str:
        from state.tenant_config import SecretRef

        for key in tenant.operator_api_keys:
            if isinstance(key, SecretRef):
                return key.resolve(self.h.settings.env)
        raise EvalError(f"tenant {tenant.tenant_id} has no operator API key given by environment variable")

    def _post_twilio(self, tenant, path: str, form: dict[str, str]):
        signature = RequestValidator(self._auth_token(tenant)).compute_signature(PUBLIC_BASE_URL + path, form)
        answer = self.h.client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        if answer.status_code not in (200, 204):
            raise EvalError(f"{path} answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
        return answer

    def play(self, loaded: LoadedScript) -> ConversationResult:
        """Play one script from an empty database; return its scored steps."""
        script = loaded.script
        tenant = self.h.tenants.get(script.tenant)
        if tenant is None:
            raise EvalError(f"{loaded.path}: script {script.id} names unknown tenant {script.tenant!r}")
        started = time.perf_counter()
        self.h.reset()
        result = ConversationResult(script, loaded.split)
        number = script.customer_number()
        call: _Call | None = None
        form_values: dict[str, str] = {}
        seen_entries: dict[str, int] = defaultdict(int)
        for index, step in enumerate(script.steps, start=1):
            channel = step.channel or script.channel
            customer = f"whatsapp:{number}" if channel == "whatsapp" else number
            conversation_id = customer  # a call and the caller's texts are one conversation
            if step.pause_s is not None:
                if call is not None:
                    self._end_call(tenant, number, call)
                    call = None
                self.h.pause(tenant.tenant_id, list(seen_entries) or [conversation_id], step.pause_s)
                result.steps.append(StepResult(index, "pause", f"({step.pause_s} s pass)", channel))
                continue
            if channel != "voice" and call is not None:
                self._end_call(tenant, number, call)
                call = None
            heard: str | None = None
            outcome = StepResult(index, step.kind, "", channel)
            try:
                if step.customer is not None:
                    outcome.said = step.customer
                    if channel == "voice":
                        if call is None:
                            call = self._start_call(tenant, number)
                        heard = self._say(tenant, number, call, step.customer)
                    else:
                        self._text(tenant, customer, step.customer)
                        self.h.work()
                elif step.operator is not None:
                    outcome.said = f"[operator {step.operator.action}]" + (f" {step.operator.text}" if step.operator.text else "")
                    self._operator(tenant, conversation_id, step.operator.action, step.operator.text)
                    self.h.work()
                elif step.form is not None:
                    outcome.said = f"[form page {step.form.page} {step.form.action}] " + ", ".join(
                        f"{k}={v}" for k, v in step.form.fields.items()
                    )
                    self._form(tenant, conversation_id, step, form_values)
                    self.h.work()
            except EvalError as exc:
                outcome.error = str(exc)
            seen, seen_entries[conversation_id] = self._observe(tenant, conversation_id, seen_entries[conversation_id])
            seen.heard = heard
            outcome.routes = seen.routes
            outcome.lane, outcome.intent, outcome.status = seen.lane, seen.intent, seen.status
            outcome.replies = [asdict(r) for r in seen.replies]
            if heard is not None:
                outcome.replies.append({"author": "ai", "text": heard, "channel": "voice", "to": number, "delivered": True, "heard": True})
            ai = seen.ai_replies()
            result.ai_replies += len(ai)
            result.fallback_replies += sum(is_fallback(r.text, self.fallback_texts) for r in ai)
            expect = step.expect
            if expect is None and channel == "voice" and step.customer is not None:
                expect = Expect()  # every spoken reply is checked for voice wording
            if expect is not None and outcome.error is None:
                outcome.checks = check_step(
                    expect, seen, customer=customer if channel != "voice" else number, voice=channel == "voice",
                    fallback_texts=self.fallback_texts,
                )
                if expect.rubric and self.judge is not None:
                    ok, reason = self.judge(expect.rubric, self._transcript(result, outcome, seen, customer))
                    outcome.checks.append(Check("rubric", ok, expect.rubric, reason))
            result.steps.append(outcome)
        if call is not None:
            self._end_call(tenant, number, call)
        result.seconds = time.perf_counter() - started
        return result

    # the channels

    def _text(self, tenant, sender: str, body: str) -> None:
        from devtools.chat import inbound_form

        to = tenant.phone_numbers[0]
        to = f"whatsapp:{to}" if sender.startswith("whatsapp:") else to
        form = inbound_form(account_sid=ACCOUNT_SID, from_number=sender, to_number=to, body=body)
        self._post_twilio(tenant, "/twilio/messaging", form)

    def _call_form(self, tenant, number: str, call: _Call, **extra: str) -> dict[str, str]:
        return {
            "CallSid": call.call_sid, "AccountSid": ACCOUNT_SID, "From": number, "To": tenant.phone_numbers[0],
            "CallStatus": "in-progress", "ApiVersion": "2010-04-01", "Direction": "inbound", **extra,
        }  # fmt: skip

    def _start_call(self, tenant, number: str) -> _Call:
        import secrets

        call = _Call("CA" + secrets.token_hex(16))
        said = _said(self._post_twilio(tenant, "/twilio/voice", self._call_form(tenant, number, call)))
        if not said:
            raise EvalError("the call was not greeted")
        return call

    def _say(self, tenant, number: str, call: _Call, speech: str) -> str:
        """Say ``speech`` as the call's next utterance; return what the caller hears next."""
        n = call.n
        call.n += 1
        form = self._call_form(tenant, number, call, SpeechResult=speech, Confidence="0.93")
        answer = self._post_twilio(tenant, f"/twilio/voice/turn?n={n}", form)
        said = _said(answer)
        from service.twilio_voice import HOLDING_TEXT

        attempt = 1
        while said == [HOLDING_TEXT]:
            self.h.work()
            answer = self._post_twilio(tenant, f"/twilio/voice/poll?n={n}&attempt={attempt}", self._call_form(tenant, number, call))
            said = _said(answer)
            attempt += 1
            if attempt > 3 and said == [HOLDING_TEXT]:
                raise EvalError("the spoken reply never came")
        self.h.work()  # texts the turn queued (the link) are sent
        return " ".join(said)

    def _end_call(self, tenant, number: str, call: _Call) -> None:
        form = self._call_form(tenant, number, call, CallStatus="completed", CallDuration=str(20 * call.n))
        self._post_twilio(tenant, "/twilio/voice/status", form)
        self.h.work()
        self.h.recorder.take()

    def _operator(self, tenant, conversation_id: str, action: str, text: str | None) -> None:
        base = f"/api/v1/tenants/{tenant.tenant_id}/conversations/{quote(conversation_id, safe='')}"
        headers = {"Authorization": f"Bearer {self._operator_key(tenant)}", "X-Operator": OPERATOR_NAME}
        path = {"note": "notes"}.get(action, action)
        body = {"text": text} if text else None
        answer = self.h.client.post(f"{base}/{path}", json=body, headers=headers)
        if answer.status_code == 409 and action == "reply":  # reply needs a claim; a person would claim first
            self.h.client.post(f"{base}/claim", headers=headers)
            answer = self.h.client.post(f"{base}/{path}", json=body, headers=headers)
        if answer.status_code not in (200, 202):
            raise EvalError(f"operator {action} answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")

    def _form(self, tenant, conversation_id: str, step: Step, values: dict[str, str]) -> None:
        from state.keys import ConversationKeys

        form = tenant.form
        if form is None:
            raise EvalError(f"tenant {tenant.tenant_id} has no hosted form")
        view = self.h.runtime.store.read(ConversationKeys(tenant.tenant_id, conversation_id))
        token = view.state.form_token if view else None
        if not token:
            raise EvalError("no form link was sent, so there is no form to type in")
        if step.form.page > len(form.pages):
            raise EvalError(f"the form has {len(form.pages)} pages, not {step.form.page}")
        values.update(step.form.fields)
        fields = {fid: values.get(fid, "") for fid in form.fields()}
        body = {
            "screen_name": form.pages[step.form.page - 1].screen_name, "page": step.form.page, "fields": fields,
            "action": step.form.action,
        }  # fmt: skip
        if step.form.field_id or (step.form.action == "field_change" and step.form.fields):
            body["field_id"] = step.form.field_id or list(step.form.fields)[-1]
        answer = self.h.client.post(f"/f/{token}/activity", json=body)
        if answer.status_code != 201:
            raise EvalError(f"the hosted form refused the activity: {answer.status_code} {answer.get_data(as_text=True)[:300]}")

    # observing

    def _observe(self, tenant, conversation_id: str, seen_entries: int) -> tuple[Observed, int]:
        """Read the conversation back: state, the step's new outbound transcript entries with delivery, routes."""
        from state.keys import ConversationKeys

        keys = ConversationKeys(tenant.tenant_id, conversation_id)
        routes = [
            {"lane": r.lane, "intent": r.intent, "reason": r.reason, "confidence": round(r.confidence, 3), "router": r.router}
            for r in self.h.recorder.take()
        ]
        view = self.h.runtime.store.read(keys)
        if view is None:
            return Observed(routes=routes), seen_entries
        state = view.state
        replies: list[Reply] = []
        transcript = state.transcript
        start = min(seen_entries, len(transcript))
        for entry in transcript[start:]:
            if entry.direction != "outbound":
                continue
            if (entry.message_id or "").startswith("say:"):
                continue  # spoken: the runner heard it in the TwiML
            stored = self.h.runtime.store.outbound_entry(keys, entry.message_id) if entry.message_id else None
            message = stored.message if stored else None
            status = view.delivery.get(entry.message_id or "", stored.status if stored else "missing")
            replies.append(Reply(
                author=entry.author, text=entry.text, channel="whatsapp" if conversation_id.startswith("whatsapp:") else "sms",
                to=message.to if message else conversation_id, delivered=status in ("sent", "delivered", "read"),
            ))  # fmt: skip
        # spoken AI replies count for the fallback share as AI replies
        for entry in transcript[start:]:
            if entry.direction == "outbound" and (entry.message_id or "").startswith("say:"):
                replies.append(Reply(author=entry.author, text=entry.text, channel="voice", to=conversation_id))
        observed = Observed(
            lane=state.lane, status=state.status, slots=dict(state.slots), opted_out=view.opted_out,
            handoff_reason=state.handoff.reason if state.handoff else None, routes=routes, replies=replies,
        )  # fmt: skip
        return observed, len(transcript)

    def _transcript(self, result: ConversationResult, current: StepResult, seen: Observed, customer: str) -> str:
        lines = []
        for step in [*result.steps, current]:
            if step.kind == "pause":
                lines.append(step.said)
                continue
            lines.append(f"{'CUSTOMER' if step.kind == 'customer' else step.kind.upper()}: {step.said}")
            for reply in step.replies:
                if reply.get("channel") == "voice" and not reply.get("heard"):
                    continue
                lines.append(f"{reply['author'].upper()}: {reply['text']}")
        return "\n".join(lines)


def _said(answer) -> list[str]:
    """The ``<Say>`` texts of a TwiML answer, in order."""
    root = ET.fromstring(answer.get_data())
    return [say.text or "" for say in root.iter("Say")]


# -- the judge (--llm) ---------------------------------------------------------------------

JUDGE_PROMPT: Final = (
    "You grade one reply of a customer-service assistant (SMS or phone). You get the conversation so far and a "
    "rubric for the assistant's LAST reply. Answer only JSON: {\"pass\": true|false, \"reason\": \"<one sentence>\"}."
)


def make_judge(base_url: str, api_key: str, model: str) -> Callable[[str, str], tuple[bool, str]]:
    """Return ``judge(rubric, transcript) -> (ok, reason)`` asking ``model`` through the official ``openai`` client.

    A malformed or failed answer is a failed check whose reason says why.
    """
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=JUDGE_TIMEOUT_S, max_retries=1)

    def judge(rubric: str, transcript: str) -> tuple[bool, str]:
        try:
            completion = client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": JUDGE_PROMPT},
                    {"role": "user", "content": f"CONVERSATION:\n{transcript}\n\nRUBRIC for the last reply: {rubric}"},
                ],
                response_format={"type": "json_object"},
                temperature=0,
            )
            verdict = json.loads(completion.choices[0].message.content or "")
        except (openai.OpenAIError, json.JSONDecodeError, IndexError) as exc:
            return False, f"judge failed: {type(exc).__name__}: {exc}"[:300]
        if not isinstance(verdict, dict) or not isinstance(verdict.get("pass"), bool):
            return False, f"judge answered without a boolean 'pass': {str(verdict)[:200]}"
        return verdict["pass"], str(verdict.get("reason", ""))[:300]

    return judge


# -- running a suite -----------------------------------------------------------------------


@dataclass
class SuiteRun:
    """A played suite: its results and the fallback texts it counted."""

    results: list[ConversationResult]
    fallback_texts: list[str]
    llm: bool = False
    seconds: float = 0.0

    def summary(self) -> Summary:
        return summarize(self.results)

    def as_dict(self) -> dict[str, Any]:
        """The JSON report: summary, breakdowns, and every step with its checks and replies."""
        return {
            "llm": self.llm,
            "seconds": round(self.seconds, 2),
            "fallback_texts": self.fallback_texts,
            "summary": self.summary().as_dict(),
            "by_split": {k: v.as_dict() for k, v in breakdown(self.results, lambda r: r.split or "-").items()},
            "by_tenant": {k: v.as_dict() for k, v in breakdown(self.results, lambda r: r.script.tenant).items()},
            "by_channel": {k: v.as_dict() for k, v in breakdown(self.results, lambda r: r.script.channel).items()},
            "by_pattern": {k: v.as_dict() for k, v in breakdown(self.results, lambda r: r.script.pattern).items()},
            "conversations": [
                {
                    "id": r.script.id, "split": r.split, "tenant": r.script.tenant, "channel": r.script.channel,
                    "pattern": r.script.pattern, "language": r.script.language, "passed": r.passed,
                    "ai_replies": r.ai_replies, "fallback_replies": r.fallback_replies, "seconds": round(r.seconds, 3),
                    "steps": [
                        {
                            "index": s.index, "kind": s.kind, "said": s.said, "channel": s.channel, "scored": s.scored,
                            "passed": s.passed, "lane": s.lane, "intent": s.intent, "status": s.status,
                            "routes": s.routes, "error": s.error, "replies": s.replies,
                            "checks": [{"name": c.name, "ok": c.ok, "expected": c.expected, "actual": c.actual} for c in s.checks],
                        }
                        for s in r.steps
                    ],
                }
                for r in self.results
            ],
        }  # fmt: skip


def select(
    scripts: Sequence[LoadedScript], *, tenant: str | None = None, pattern: str | None = None, keyword: str | None = None
) -> list[LoadedScript]:
    """Filter scripts by tenant id, pattern (exact) and ``keyword`` (a substring of the id)."""
    return [
        s for s in scripts
        if (tenant is None or s.script.tenant == tenant)
        and (pattern is None or s.script.pattern == pattern)
        and (keyword is None or keyword in s.script.id)
    ]  # fmt: skip


def run_suite(
    scripts: Sequence[LoadedScript], *, tenants_path: Path = DEFAULT_TENANTS, extra_fallback_texts: Sequence[str] = (),
    llm: bool = False, llm_base_url: str | None = None, llm_api_key: str | None = None, llm_model: str | None = None,
    on_result: Callable[[ConversationResult], None] | None = None,
) -> SuiteRun:
    """Play ``scripts`` on a fresh harness and return the results.

    Args:
        scripts: what to play (in order).
        tenants_path: the tenants YAML.
        extra_fallback_texts: more "don't know" replies, on top of :func:`default_fallback_texts`.
        llm, llm_base_url, llm_api_key, llm_model: see :class:`Harness`; rubrics are judged too.
        on_result: called after each conversation (progress output).

    Raises:
        EvalError: a script names an unknown tenant, or the LLM settings are missing.
        devtools.redis_server.RedisServerError: no Redis server could be started.
    """
    started = time.perf_counter()
    with Harness(tenants_path, llm=llm, llm_base_url=llm_base_url, llm_api_key=llm_api_key, llm_model=llm_model) as harness:
        fallback_texts = default_fallback_texts(harness.tenants.values()) + [t for t in extra_fallback_texts if t]
        judge = None
        if llm:
            model = llm_model or next((t.llm.model for t in harness.tenants.values() if t.llm), "gpt-4o-mini")
            judge = make_judge(llm_base_url, llm_api_key or "laneway-eval", model)
        player = Player(harness, fallback_texts, judge)
        results = []
        for loaded in scripts:
            result = player.play(loaded)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return SuiteRun(results, fallback_texts, llm, time.perf_counter() - started)


# -- printing ------------------------------------------------------------------------------


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_step_table(run: SuiteRun, failures_only: bool = False, show_replies: bool = False) -> str:
    """The per-step table: conversation, step, what was said, lane, intent, status, result, and why it failed.

    ``show_replies``: also print what the customer got after each row (heard on a call, else texted).
    """
    lines = [f"{'conversation':<44} {'#':>2} {'said':<42} {'lane':<8} {'intent':<12} {'status':<13} result"]
    for result in run.results:
        for step in result.steps:
            if not step.scored or (failures_only and step.passed):
                continue
            mark = "ok" if step.passed else "FAIL"
            lines.append(
                f"{_clip(result.script.id, 44):<44} {step.index:>2} {_clip(step.said, 42):<42} {str(step.lane):<8} "
                f"{str(step.intent):<12} {str(step.status):<13} {mark}"
            )
            if show_replies:
                for reply in step.replies:
                    if reply.get("channel") == "voice" and not reply.get("heard"):
                        continue
                    lines.append(f"{'':>48}{reply['author']}> {_clip(reply['text'], 200)}")
            if not step.passed:
                if step.error:
                    lines.append(f"{'':>48}error: {step.error}")
                for check in step.failures():
                    actual = check.actual if check.actual is not None else "-"
                    lines.append(f"{'':>48}{check.name}: expected {check.expected!r}, got {_clip(actual, 160)!r}")
    return "\n".join(lines)


def format_summary(run: SuiteRun) -> str:
    """The summary: steps passed, conversations fully passed, fallback share; then per split, tenant, channel, pattern."""

    def row(name: str, s: Summary) -> str:
        return (
            f"{name:<28} steps {s.steps_passed:>4}/{s.steps:<4} {s.step_pass_rate:6.1%}   conversations "
            f"{s.conversations_passed:>3}/{s.conversations:<3} {s.conversation_pass_rate:6.1%}   fallback "
            f"{s.fallback_replies:>3}/{s.ai_replies:<4} {s.fallback_share:6.1%}"
        )

    lines = [row("all" + (" (llm)" if run.llm else ""), run.summary())]
    for title, key in (
        ("split", lambda r: r.split or "-"), ("tenant", lambda r: r.script.tenant),
        ("channel", lambda r: r.script.channel), ("pattern", lambda r: r.script.pattern),
    ):  # fmt: skip
        groups = breakdown(run.results, key)
        if len(groups) > 1 or title == "split":
            lines.append(f"-- by {title}")
            lines += [row(f"  {name}", s) for name, s in groups.items()]
    lines.append(f"played {len(run.results)} conversations in {run.seconds:.1f} s")
    return "\n".join(lines)


@click.command("eval")
@click.option("--suite", "suite_path", default=str(DEFAULT_SUITE), show_default=True, type=click.Path(exists=True),
              help="Directory with dev/ and test/ scripts, or one script file.")
@click.option("--split", type=click.Choice(["dev", "test", "all"]), default="dev", show_default=True,
              help="Which scripts to play (test is held out: the lead measures it).")
@click.option("--tenant", default=None, help="Only this tenant's scripts.")
@click.option("--pattern", default=None, help="Only scripts of this pattern (e.g. side-question).")
@click.option("-k", "keyword", default=None, help="Only scripts whose id contains this text.")
@click.option("--tenants", "tenants_path", default=str(DEFAULT_TENANTS), show_default=True,
              type=click.Path(exists=True, dir_okay=False), help="Tenants YAML.")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Also write the full report as JSON.")
@click.option("--failures-only", is_flag=True, help="Table: only the steps that failed.")
@click.option("--replies", "show_replies", is_flag=True, help="Table: also print every reply under its step.")
@click.option("--fallback-text", "fallback_texts", multiple=True,
              help="Another reply that counts as a fallback (repeatable; re:<regex> allowed).")
@click.option("--llm", "with_llm", is_flag=True,
              help=f"Turn each tenant's LLM on against {EVAL_ENV_BASE_URL} ({EVAL_ENV_API_KEY}, optional "
                   f"{EVAL_ENV_MODEL}) and judge each step's rubric with it.")
@click.option("--llm-base-url", envvar=EVAL_ENV_BASE_URL, default=None, show_envvar=True,
              help="OpenAI-compatible base URL (ending /v1) for --llm.")
@click.option("--llm-api-key", envvar=EVAL_ENV_API_KEY, default=None, show_envvar=True, help="API key for --llm.")
@click.option("--llm-model", envvar=EVAL_ENV_MODEL, default=None, show_envvar=True,
              help="Model for --llm (default: each tenant's).")
def eval_command(
    suite_path: str, split: str, tenant: str | None, pattern: str | None, keyword: str | None, tenants_path: str,
    json_path: str | None, failures_only: bool, show_replies: bool, fallback_texts: tuple[str, ...], with_llm: bool,
    llm_base_url: str | None, llm_api_key: str | None, llm_model: str | None,
) -> None:
    """Play conversation scripts through the real pipeline and score every step.

    Exits 1 when a script is malformed or no script matched; the figures are
    reported, not enforced (the floor lives in the test suite).
    """
    root = Path(suite_path)
    splits = SPLITS if split == "all" else (split,)
    try:
        scripts = select(load_suite(root, splits), tenant=tenant, pattern=pattern, keyword=keyword)
    except ScriptError as exc:
        raise EvalError(str(exc)) from exc
    if not scripts:
        raise EvalError("no script matched")
    extra = [*suite_fallback_texts(root), *fallback_texts]
    run = run_suite(
        scripts, tenants_path=Path(tenants_path), extra_fallback_texts=extra, llm=with_llm,
        llm_base_url=llm_base_url, llm_api_key=llm_api_key, llm_model=llm_model,
    )  # fmt: skip
    click.echo(format_step_table(run, failures_only, show_replies))
    click.echo("")
    click.echo(format_summary(run))
    if json_path:
        Path(json_path).write_text(json.dumps(run.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
        click.echo(f"wrote {json_path}")
