"""``laneway chat --voice``: a call played through the Twilio Voice webhooks over HTTP, as Twilio would.

The app is served over real HTTP from a thread (signatures checked against the
public URL); the burst worker runs in the test's main thread meanwhile, as a
worker process would (:func:`while_working`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner

from devtools.chat import Call, Endpoints, chat_command, load_tenants, tenant_for_number
from devtools.serving import serve_in_thread
from service.twilio_voice import GOODBYE_TEXT, REPROMPT_TEXT
from state.keys import ConversationKeys
from tests.conftest import ACME_NUMBER, EXAMPLE_TENANTS, PUBLIC_BASE_URL

pytestmark = pytest.mark.redis_server

CALLER = "+15557659001"


@pytest.fixture
def endpoints(app, standin):
    url, stop = serve_in_thread(app, "laneway-web-for-chat")
    yield Endpoints(url, PUBLIC_BASE_URL, standin.url, str(EXAMPLE_TENANTS))
    stop()


@pytest.fixture
def acme():
    return tenant_for_number(load_tenants(str(EXAMPLE_TENANTS)), ACME_NUMBER)


def while_working(work, request):
    """Run ``request()`` in a thread while burst workers drain the queue here; return its result."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(request)
        while not future.done():
            work()
            time.sleep(0.01)
        return future.result()


def test_a_call_is_greeted_answered_texted_the_link_and_hung_up_on_after_silence(endpoints, acme, work, standin, rt):
    call = Call(acme, ACME_NUMBER, CALLER, endpoints, "development")
    greeting = call.dial()
    assert greeting.said == ["Hi, this is Ava from Acme Insurance. How can I help you today?"]
    assert call.listen_url == "/twilio/voice/turn?n=1"

    first = while_working(work, lambda: call.say("I'd like to apply for life insurance"))
    assert "name" in " ".join(first.said).lower() and call.listen_url == "/twilio/voice/turn?n=2"
    while_working(work, lambda: call.say("Dana Whitfield"))
    third = while_working(work, lambda: call.say("Yes please"))
    assert "/f/" not in " ".join(third.said)
    work()
    texts = [m for m in standin.messages() if m["To"] == CALLER]
    assert len(texts) == 1 and "/f/" in texts[0]["Body"]

    assert call.stay_silent().said == [REPROMPT_TEXT]
    last = call.stay_silent()
    assert last.said == [GOODBYE_TEXT] and last.hung_up and call.ended


def test_hanging_up_posts_the_final_status(endpoints, acme, work, rt):
    call = Call(acme, ACME_NUMBER, CALLER, endpoints, "development")
    call.dial()
    while_working(work, lambda: call.say("What are your opening hours?"))
    call.hang_up()
    work()
    state = rt.store.read(ConversationKeys("acme-insurance", CALLER)).state
    assert any(note.text.startswith("Call completed after") for note in state.notes)


def test_chat_voice_prints_what_the_caller_hears_and_the_texted_link(endpoints, acme, work, monkeypatch, standin):
    monkeypatch.setenv("LANEWAY_TWILIO_API_URL", endpoints.twilio_api_url)
    monkeypatch.setenv("LANEWAY_PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    args = ["--voice", "--to", ACME_NUMBER, "--from", CALLER, "--url", endpoints.web_url, "--tenants", str(EXAMPLE_TENANTS)]
    lines = "I'd like to apply for life insurance\nDana Whitfield\nYes please\n"
    result = while_working(work, lambda: CliRunner().invoke(chat_command, args, input=lines))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Acme Insurance (voice)> Hi, this is Ava from Acme Insurance." in out
    assert "you (voice)> Dana Whitfield" in out
    assert "Acme Insurance (text)> " in out and "/f/" in out.split("(text)> ", 1)[1]
    assert out.rstrip().endswith("(call ended)")
