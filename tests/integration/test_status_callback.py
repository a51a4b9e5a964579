"""``POST /twilio/messaging/status?entry=<id>``: Twilio's status callback records which entry a sid belongs to."""

from __future__ import annotations

import pytest

from jobs.delivery import status_callback_url
from state.keys import ConversationKeys
from state.tenant_config import TenantConfig
from tests.conftest import ACME_NUMBER, AUTH_TOKENS, PUBLIC_BASE_URL, sign

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557658001"
KEYS = ConversationKeys("acme-insurance", CUSTOMER)
SID = "SM" + "a" * 32


def callback(client, entry: str | None, sid: str = SID, status: str = "sent", token: str = AUTH_TOKENS[ACME_NUMBER], **extra):
    """Post a status callback as Twilio does: signed over the URL with its query."""
    url = status_callback_url(PUBLIC_BASE_URL, entry) if entry is not None else PUBLIC_BASE_URL + "/twilio/messaging/status"
    form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status, "AccountSid": "AC" + "0" * 32,
            "From": ACME_NUMBER, "To": CUSTOMER, "ApiVersion": "2010-04-01", **extra}  # fmt: skip
    return client.post(url.removeprefix(PUBLIC_BASE_URL), data=form, headers={"X-Twilio-Signature": sign(form, token, url)})


@pytest.fixture
def entry(post_sms, rt) -> str:
    post_sms("What are your opening hours?", CUSTOMER)
    rt.queue.empty()
    [message_id] = rt.controller.drain("acme-insurance", CUSTOMER).message_ids
    return message_id


def test_a_signed_callback_records_the_entrys_sid(client, entry, rt):
    answer = callback(client, entry)
    assert answer.status_code == 204
    assert rt.store.outbound_entry(KEYS, entry).evidence_sid == SID
    assert rt.store.outbound_entry(KEYS, entry).status == "queued"  # evidence only; the status is not moved here


def test_refusals(client, entry):
    assert callback(client, entry, token="not-the-token").status_code == 403
    assert callback(client, None).status_code == 400
    assert callback(client, "1.0; DROP").status_code == 400
    assert callback(client, entry, sid="SM123").status_code == 400
    assert callback(client, "99.9").status_code == 404
    answer = client.post("/twilio/messaging/status?entry=" + entry, json={"MessageSid": SID})
    assert answer.status_code == 415


def test_another_entrys_sid_is_refused(client, post_sms, rt, work):
    post_sms("What are your opening hours?", CUSTOMER)
    rt.queue.empty()
    first = rt.controller.drain("acme-insurance", CUSTOMER).message_ids[0]
    post_sms("Do I need a medical exam?", CUSTOMER)
    rt.queue.empty()
    second = rt.controller.drain("acme-insurance", CUSTOMER).message_ids[0]
    rt.store.claim_outbound(KEYS, first)
    assert rt.store.finish_outbound(KEYS, first, "sent", SID)
    answer = callback(client, second)
    assert answer.status_code == 409 and "another outbox entry" in answer.get_json()["error"]
    assert rt.store.outbound_entry(KEYS, second).evidence_sid is None


def test_only_the_sid_the_entry_holds_moves_it(client, entry, rt):
    rt.store.claim_outbound(KEYS, entry)
    assert rt.store.finish_outbound(KEYS, entry, "sent", SID)
    other = "SM" + "b" * 32  # e.g. a duplicate create the entry never recorded
    assert callback(client, entry, sid=other, status="failed", ErrorCode="30007").status_code == 204
    recorded = rt.store.outbound_entry(KEYS, entry)
    assert (recorded.evidence_sid, recorded.twilio_status, recorded.error_code) == (None, None, None)
    assert rt.store.record_status(KEYS, entry, other, "delivered").outcome == "stale"
    assert callback(client, entry, status="delivered").status_code == 204
    assert rt.store.outbound_entry(KEYS, entry).twilio_status == "delivered"


def test_without_from_the_messaging_service_names_the_tenant(client, entry, rt, tenants, settings):
    service_sid = "MG" + "6" * 32
    acme = tenants.get("acme-insurance", cached=False)
    tenants.save(TenantConfig.model_validate({**acme.model_dump(), "sending": {"messaging_service_sid": service_sid}}), settings.env)
    url = status_callback_url(PUBLIC_BASE_URL, entry)

    def post(form: dict[str, str]):
        form = {"MessageSid": SID, "MessageStatus": "sent", "To": CUSTOMER, **form}
        return client.post(url.removeprefix(PUBLIC_BASE_URL), data=form, headers={"X-Twilio-Signature": sign(form, AUTH_TOKENS[ACME_NUMBER], url)})

    assert post({"MessagingServiceSid": service_sid}).status_code == 204
    assert rt.store.outbound_entry(KEYS, entry).evidence_sid == SID
    assert post({"MessagingServiceSid": "MG" + "7" * 32}).status_code == 404
    assert post({"MessagingServiceSid": "MG123"}).status_code == 400
    assert post({}).status_code == 400  # neither From nor MessagingServiceSid
