"""Webhook signing, the address rules and the configuration they come from (no sockets, no Redis)."""

from __future__ import annotations

import hashlib
import hmac
import socket
from pathlib import Path

import pytest

from core.settings import Settings
from jobs.webhooks import (
    SIGNATURE_HEADER,
    WebhookRefusedError,
    address_problem,
    canonical_body,
    parse_networks,
    post_webhook,
    resolve_checked,
    sign_payload,
    verify_signature,
)
from state.errors import ConfigError
from state.tenant_config import AlertChannel, parse_tenants_yaml, webhook_url_problem

EXAMPLE = Path(__file__).parents[3] / "tenants.example.yaml"
SECRET = "whsec-unit"
NOW = 1_800_000_000


# --- signing ---------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body, headers = sign_payload({"b": 2, "a": "é"}, SECRET, timestamp_s=NOW)
    assert body == '{"a":"é","b":2}'.encode()
    assert headers["Content-Type"] == "application/json"
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"t={NOW},v1={expected}"
    assert verify_signature(headers[SIGNATURE_HEADER], body, SECRET, tolerance_s=300, now=NOW + 10)


def _signed():
    body, headers = sign_payload({"event": "escalated", "rule_id": "r1"}, SECRET, timestamp_s=NOW)
    return body, headers[SIGNATURE_HEADER]


def test_a_tampered_body_fails():
    body, header = _signed()
    assert not verify_signature(header, body.replace(b"r1", b"r2"), SECRET, now=NOW)
    assert not verify_signature(header, body + b" ", SECRET, now=NOW)


def test_an_old_or_future_timestamp_fails():
    body, header = _signed()
    assert verify_signature(header, body, SECRET, tolerance_s=300, now=NOW + 300)
    assert not verify_signature(header, body, SECRET, tolerance_s=300, now=NOW + 301)
    assert not verify_signature(header, body, SECRET, tolerance_s=300, now=NOW - 301)


def test_a_replayed_signature_with_a_new_timestamp_fails():
    body, header = _signed()
    forged = header.replace(f"t={NOW}", f"t={NOW + 1000}")
    assert not verify_signature(forged, body, SECRET, now=NOW + 1000)


def test_the_wrong_secret_fails():
    body, header = _signed()
    assert not verify_signature(header, body, "another-secret", now=NOW)


@pytest.mark.parametrize("header", [None, "", "t=abc,v1=00", f"t={NOW}", "v1=00", f"t={NOW},v1=", f"t=-{NOW},v1=00"])
def test_malformed_headers_fail(header):
    body, _ = _signed()
    assert not verify_signature(header, body, SECRET, now=NOW)


def test_any_of_several_v1_signatures_may_match_during_a_secret_rotation():
    body, header = _signed()
    _, old = sign_payload({"event": "escalated", "rule_id": "r1"}, "old-secret", timestamp_s=NOW)
    both = header + "," + old[SIGNATURE_HEADER].split(",")[1]
    assert verify_signature(both, body, SECRET, now=NOW)
    assert verify_signature(both, body, "old-secret", now=NOW)


def test_an_empty_secret_is_refused():
    with pytest.raises(ValueError):
        sign_payload({}, "")
    body, header = _signed()
    assert not verify_signature(header, body, "", now=NOW)


def test_canonical_body_is_stable():
    assert canonical_body({"b": [1, 2], "a": None}) == b'{"a":null,"b":[1,2]}'


# --- addresses -------------------------------------------------------------------

REFUSED = [
    "127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "0.0.0.0", "::",
    "10.0.0.1", "172.16.0.1", "192.168.1.1", "fd00::1", "fc00::1",
    "169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%lo", "fec0::1",
    "100.64.0.1", "100.127.255.254",
    "224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1",
    "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.51.100.1", "203.0.113.1", "198.18.0.1", "2001:db8::1",
    "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "64:ff9b::7f00:1", "::127.0.0.1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
ALLOWED = ["8.8.8.8", "93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_special_purpose_addresses_are_refused(address):
    assert address_problem(address) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_global_addresses_are_allowed(address):
    assert address_problem(address) is None


def test_the_exemption_covers_only_its_networks():
    exempt = parse_networks(["127.0.0.1/32"])
    assert address_problem("127.0.0.1", exempt) is None
    assert address_problem("::ffff:127.0.0.1", exempt) is None  # the same host
    assert address_problem("127.0.0.2", exempt) is not None
    assert address_problem("169.254.169.254", exempt) is not None
    assert address_problem("::1", exempt) is not None


def test_not_an_address():
    assert "not an IP address" in address_problem("example.com")


def _resolver(*addresses):
    def getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return getaddrinfo


def test_every_resolved_address_is_checked():
    assert resolve_checked("h.example", 443, getaddrinfo=_resolver("8.8.8.8", "8.8.8.8", "1.1.1.1")) == ["8.8.8.8", "1.1.1.1"]
    with pytest.raises(WebhookRefusedError, match="10.0.0.1"):
        resolve_checked("h.example", 443, getaddrinfo=_resolver("8.8.8.8", "10.0.0.1"))
    with pytest.raises(WebhookRefusedError, match="no address"):
        resolve_checked("h.example", 443, getaddrinfo=_resolver())


def test_a_name_that_does_not_resolve_is_refused():
    def fails(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(WebhookRefusedError, match="cannot resolve"):
        resolve_checked("nowhere.invalid", 443, getaddrinfo=fails)


def test_numeric_spellings_resolve_to_loopback_and_are_refused():
    """The C library's resolver reads these as 127.0.0.1 (inet_aton); no network involved."""
    for host in ("127.1", "0x7f000001", "2130706433", "017700000001", "127.000.000.001"):
        with pytest.raises(WebhookRefusedError, match="127.0.0.1"):
            resolve_checked(host, 443)


def test_post_webhook_checks_the_url_before_resolving():
    def must_not_resolve(*args, **kwargs):
        raise AssertionError("resolved a refused URL")

    for url, allowed in [
        ("http://hooks.example.com/", ["hooks.example.com"]),
        ("https://evil.example.com/", ["hooks.example.com"]),
        ("https://user:pw@hooks.example.com/", ["hooks.example.com"]),
        ("ftp://hooks.example.com/", ["hooks.example.com"]),
        ("https:///path", ["hooks.example.com"]),
    ]:
        with pytest.raises(WebhookRefusedError):
            post_webhook(url, {}, SECRET, allowed, getaddrinfo=must_not_resolve)


# --- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url, problem",
    [
        ("https://hooks.example.com/alerts", None),
        ("https://HOOKS.example.com./alerts?x=1", None),
        ("https://hooks.example.com:8443/", None),
        ("http://hooks.example.com/", "https"),
        ("https://other.example.com/", "allowed_hosts"),
        ("https://hooks.example.com.evil.test/", "allowed_hosts"),
        ("https://hooks.example.com@evil.test/", "user name"),
        ("https://hooks.example.com:0/", "port"),
        ("https://hooks.example.com:99999/", "parse"),
        ("https://hooks.example.com/a b", "spaces"),
        ("", "empty"),
    ],
)
def test_webhook_url_rules(url, problem):
    found = webhook_url_problem(url, ["hooks.example.com"])
    assert (found is None) if problem is None else (problem in found)


def _with_alerts(block: str) -> str:
    text = EXAMPLE.read_text()
    marker = "    operator_api_keys:\n      - {env: ACME_OPERATOR_API_KEY"
    assert marker in text
    return text.replace(marker, block + marker, 1)


def test_the_alerts_section_loads():
    text = _with_alerts(
        "    alerts:\n"
        "      webhook_url: https://hooks.acme.example/laneway\n"
        "      secret: {env: ACME_WEBHOOK_SECRET, dev_value: dev-acme-webhook-secret}\n"
        "      allowed_hosts: [Hooks.Acme.Example, alerts.acme.example]\n"
    )
    acme = parse_tenants_yaml(text).tenants[0]
    assert acme.alerts.allowed_hosts == ["hooks.acme.example", "alerts.acme.example"]
    assert acme.alerts.url_problem("https://alerts.acme.example/x") is None
    assert "allowed_hosts" in acme.alerts.url_problem("https://169.254.169.254/")


@pytest.mark.parametrize(
    "url, allowed, message",
    [
        ("http://hooks.acme.example/", "[hooks.acme.example]", "https"),
        ("https://elsewhere.example/", "[hooks.acme.example]", "allowed_hosts"),
        ("https://hooks.acme.example/", "[]", "at least 1"),
        ("https://hooks.acme.example/", "['not a host']", "host name"),
    ],
)
def test_the_alerts_section_is_validated_at_load(url, allowed, message):
    text = _with_alerts(
        f"    alerts:\n      webhook_url: {url}\n      secret: {{env: ACME_WEBHOOK_SECRET}}\n      allowed_hosts: {allowed}\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_tenants_yaml(text)
    assert any(line.startswith("tenants.0.alerts") and message in line for line in err.value.details), err.value.details


def test_the_alerts_url_is_optional_for_trigger_only_tenants():
    channel = AlertChannel(secret={"env": "X_SECRET"}, allowed_hosts=["hooks.example.com"])
    assert channel.webhook_url is None


# --- settings --------------------------------------------------------------------


def test_by_default_no_network_is_exempt(monkeypatch):
    monkeypatch.delenv("LANEWAY_WEBHOOK_ALLOW_NETWORKS", raising=False)
    assert Settings().webhook_allow_networks == []


def test_the_exemption_parses_commas_and_json(monkeypatch):
    monkeypatch.setenv("LANEWAY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1, ::1/128")
    assert Settings().webhook_allow_networks == ["127.0.0.1/32", "::1/128"]
    monkeypatch.setenv("LANEWAY_WEBHOOK_ALLOW_NETWORKS", '["127.0.0.0/8"]')
    assert Settings().webhook_allow_networks == ["127.0.0.0/8"]
    monkeypatch.setenv("LANEWAY_WEBHOOK_ALLOW_NETWORKS", "localhost")
    with pytest.raises(ValueError, match="not a CIDR"):
        Settings()


def test_the_exemption_is_refused_in_production(monkeypatch):
    monkeypatch.setenv("LANEWAY_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("LANEWAY_ENV", "production")
    with pytest.raises(ValueError, match="refused when LANEWAY_ENV=production"):
        Settings()
    monkeypatch.delenv("LANEWAY_WEBHOOK_ALLOW_NETWORKS")
    assert Settings().webhook_allow_networks == []
