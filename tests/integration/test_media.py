"""Inbound media (issue 15): references in the transcript, the authenticated proxy, refused types.

The Twilio stand-in serves each attachment only with HTTP Basic
``AccountSid:AuthToken`` (Twilio's enforced media auth); the webhook carries
``NumMedia``, ``MediaUrl{N}``, ``MediaContentType{N}`` as Twilio posts them;
turns run in a real RQ worker.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from state.keys import ConversationKeys
from state.tenant_config import TenantConfig
from tests.conftest import ACME_NUMBER

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
KEYS = ConversationKeys("acme-insurance", CUSTOMER)
ACME_ACCOUNT = "AC00000000000000000000000000acme01"
ACME_TOKEN = "dev-acme-auth-token"
AUTH = {"Authorization": "Bearer dev-acme-api-key"}
PHOTO = b"\xff\xd8\xff\xe0" + b"JPEG-PAYLOAD-7f3a" * 200


def media_fields(*items: tuple[str, str]) -> dict[str, str]:
    fields = {"NumMedia": str(len(items))}
    for n, (url, content_type) in enumerate(items):
        fields |= {f"MediaUrl{n}": url, f"MediaContentType{n}": content_type}
    return fields


def transcript(client) -> list[dict]:
    path = f"/api/v1/tenants/acme-insurance/conversations/{quote(CUSTOMER, safe='')}/context"
    return client.get(path, headers=AUTH).get_json()["transcript"]


def every_value(r) -> bytes:
    """Everything stored in the test database, concatenated (to look for media bytes)."""
    out = b""
    for key in r.scan_iter():
        kind = r.type(key)
        if kind == b"string":
            out += r.get(key)
        elif kind == b"hash":
            out += b"".join(r.hgetall(key).values())
        elif kind == b"list":
            out += b"".join(r.lrange(key, 0, -1))
    return out


def test_a_photo_is_a_reference_shown_through_the_proxy_and_acknowledged(post_sms, work, standin, client, r):
    url = standin.add_media(ACME_ACCOUNT, ACME_TOKEN, "image/jpeg", PHOTO)
    answer, form = post_sms("Here is my license", CUSTOMER, **media_fields((url, "image/jpeg")))
    assert answer.status_code == 200
    work()
    customer, reply = transcript(client)[-2:]
    assert customer["text"] == "[photo] Here is my license"
    assert customer["media"] == [{
        "content_type": "image/jpeg",
        "url": f"/api/v1/tenants/acme-insurance/conversations/{quote(CUSTOMER, safe='')}/media/{form['MessageSid']}/0",
    }]
    assert reply["text"].startswith("Thanks for the photo. ")
    assert b"JPEG-PAYLOAD" not in every_value(r)  # a reference, never the bytes

    proxied = client.get(customer["media"][0]["url"], headers=AUTH)
    assert proxied.status_code == 200 and proxied.data == PHOTO
    assert proxied.headers["Content-Type"] == "image/jpeg" and "sandbox" in proxied.headers["Content-Security-Policy"]
    assert standin.media_fetches()[-1]["status"] == 200  # fetched with acme's AccountSid:AuthToken
    assert client.get(customer["media"][0]["url"]).status_code == 401
    assert client.get(customer["media"][0]["url"], headers={"Authorization": "Bearer dev-bright-api-key"}).status_code == 404
    assert client.get(customer["media"][0]["url"][:-1] + "1", headers=AUTH).status_code == 404


def test_the_proxy_keeps_to_the_size_limit_and_reports_refused_credentials(post_sms, work, standin, client, tenants, settings):
    acme = tenants.get("acme-insurance", cached=False)
    tenants.save(TenantConfig.model_validate({**acme.model_dump(), "media": {"max_bytes": 1000}}), settings.env)
    large = standin.add_media(ACME_ACCOUNT, ACME_TOKEN, "application/pdf", b"%PDF-" + b"x" * 2000)
    foreign = standin.add_media(ACME_ACCOUNT, "another-token", "image/png", b"\x89PNG")
    post_sms("two files", CUSTOMER, **media_fields((large, "application/pdf"), (foreign, "image/png")))
    work()
    customer = [t for t in transcript(client) if t["direction"] == "inbound"][-1]
    assert customer["text"] == "[PDF] [photo] two files"
    pdf, png = (m["url"] for m in customer["media"])
    too_large = client.get(pdf, headers=AUTH)
    assert too_large.status_code == 413 and "max_bytes" in too_large.get_json()["error"]
    refused = client.get(png, headers=AUTH)
    assert refused.status_code == 502 and "credentials" in refused.get_json()["error"]


def test_a_type_outside_the_allowlist_is_refused_politely(post_sms, work, standin, client, r):
    video = standin.add_media(ACME_ACCOUNT, ACME_TOKEN, "video/mp4", b"\x00\x00\x00\x18ftypmp42")
    post_sms("", CUSTOMER, **media_fields((video, "video/mp4")))
    work()
    customer, reply = transcript(client)[-2:]
    assert customer["text"] == "[file not accepted]" and "media" not in customer
    assert reply["text"].startswith("Sorry, I can't open that kind of file.")  # alone: the customer wrote nothing else
    assert r.hlen(KEYS.media) == 0
    [sent] = standin.messages()
    assert sent["Body"].startswith("Sorry, I can't open that kind of file.")


@pytest.mark.parametrize("fields, problem", [
    ({"NumMedia": "1"}, "MediaUrl0"),
    ({"NumMedia": "1", "MediaUrl0": "https://evil.example/x.jpg", "MediaContentType0": "image/jpeg"}, "MediaUrl0"),
    ({"NumMedia": "11"}, "NumMedia"),
])
def test_malformed_media_fields_are_400(post_sms, fields, problem):
    answer, _ = post_sms("hi", CUSTOMER, **fields)
    assert answer.status_code == 400 and problem in answer.get_json()["error"]


def test_media_of_another_account_is_400(post_sms, standin):
    url = standin.add_media("AC" + "1" * 32, "x", "image/jpeg", b"x")
    answer, _ = post_sms("hi", CUSTOMER, to=ACME_NUMBER, **media_fields((url, "image/jpeg")))
    assert answer.status_code == 400 and "another Twilio account" in answer.get_json()["error"]
