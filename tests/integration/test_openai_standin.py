"""The official ``openai`` client against the local OpenAI stand-in (devtools/openai_standin.py)."""

from __future__ import annotations

import json

import openai
import pytest
import requests
from click.testing import CliRunner

from cli.main import main
from devtools.openai_standin import start_openai_standin_thread


@pytest.fixture
def server():
    server = start_openai_standin_thread()
    yield server
    server.stop()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="sk-standin", max_retries=0, timeout=2)


def script(server, **body):
    requests.post(f"{server.url}/_standin/script", json=body, timeout=5).raise_for_status()


def fault(server, **body):
    requests.post(f"{server.url}/_standin/faults", json=body, timeout=5).raise_for_status()


def received(server) -> list[dict]:
    return requests.get(f"{server.url}/_standin/requests", timeout=5).json()["requests"]


SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "strict": True, "schema": {"type": "object", "properties": {"x": {"type": "integer"}}}},
}


def test_a_completion_has_openais_shape(server, client):
    script(server, responses=[{"json": {"x": 1}}])
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], response_format=SCHEMA
    )
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini" and completion.created > 0
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert json.loads(choice.message.content) == {"x": 1}
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    [sent] = received(server)
    assert sent["api_key"] == "sk-standin" and sent["status"] == 200 and sent["path"] == "/v1/chat/completions"
    assert sent["body"]["response_format"] == SCHEMA


def test_tool_calls(server, client):
    script(server, responses=[{"tool_calls": [{"name": "lookup", "arguments": {"faq": "hours"}}]}])
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hours?"}], tools=tools)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"faq": "hours"}
    assert received(server)[0]["body"]["tools"] == tools


def test_rules_answer_by_the_last_user_message(server, client):
    script(
        server,
        rules=[{"contains": "HOURS", "answer": {"content": "8 to 8"}}],
        default={"content": "pardon?"},
    )
    ask = lambda text: client.chat.completions.create(  # noqa: E731
        model="m", messages=[{"role": "user", "content": "hours?"}, {"role": "assistant", "content": "…"}, {"role": "user", "content": text}]
    ).choices[0].message.content
    assert ask("what are your hours") == "8 to 8"
    assert ask("parking") == "pardon?"


def test_faults_reach_the_client_as_openai_errors(server, client):
    fault(server, faults=[{"status": 429, "retry_after_s": 3}, {"status": 500}, {"delay_s": 1.0}, {"invalid_json": True}])
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.RateLimitError) as rate:
        client.chat.completions.create(model="m", messages=messages)
    assert rate.value.response.headers["Retry-After"] == "3"
    assert rate.value.body["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=messages)
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).chat.completions.create(model="m", messages=messages)
    content = client.chat.completions.create(model="m", messages=messages).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    assert [r["status"] for r in received(server)][:2] == [429, 500]


def test_malformed_requests_are_refused_like_openai(server):
    url = f"{server.url}/v1/chat/completions"
    assert requests.post(url, json={"model": "m", "messages": []}, timeout=5).status_code == 401
    answer = requests.post(url, json={"model": "m", "messages": []}, headers={"Authorization": "Bearer k"}, timeout=5)
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"


def test_the_cli_command_is_registered():
    result = CliRunner().invoke(main, ["openai-standin", "--help"])
    assert result.exit_code == 0 and "LANEWAY_OPENAI_BASE_URL" in result.output
