"""Fuzzing ``POST /twilio/messaging`` (hypothesis): hostile bytes never cause a 5xx or a write.

Each example builds a raw request body (form fields Twilio sends, mutated:
invalid UTF-8, lone surrogates, NUL, U+202E, emoji, duplicate keys, 2,000
parts, huge values) with a content type and a signature that is either
correct for what the server will decode (so the example reaches the parser
past the signature check) or missing / wrong. The oracle decides
independently whether the request is well formed and correctly signed:
those answer 200 with TwiML, everything else a 4xx with a JSON error, never a
5xx, and a refused request leaves the test database's DBSIZE unchanged.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from tests.conftest import ACME_NUMBER, AUTH_TOKENS, BRIGHT_NUMBER, examples, sign

pytestmark = pytest.mark.redis_server

MAX_EXAMPLES = 150
FORM = "application/x-www-form-urlencoded"
HEX = "0123456789abcdefABCDEF"
NASTY = ["\x00", "\u202e", "\u202d", "😀", "👩‍👩‍👧", "\ud800", "\udfff", "\r\n", "\n", "%", "&", "=", "+", "\ufeff", "\u0661", " "]

def mostly(valid, invalid):
    """Draw from ``valid`` three times in four, so most examples get past the early checks."""
    return st.integers(0, 3).flatmap(lambda i: valid if i else invalid)


texts = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(st.text(max_size=4), st.sampled_from(NASTY)), max_size=8).map("".join),
    st.sampled_from(["x" * 1600, "x" * 1601, "😀" * 1600, "y" * 70_000]),
)
sids = mostly(
    st.tuples(st.sampled_from(["SM", "MM"]), st.text(HEX, min_size=32, max_size=32)).map("".join),
    st.sampled_from(["", "SM" + "a" * 31, "SM" + "a" * 33, "XX" + "a" * 32, "SM" + "a" * 32 + "\n", "SM" + "a" * 31 + "\u0661"]),
)
senders = mostly(
    st.sampled_from(["+15557654321", "whatsapp:+15557654321", "+447700900123"]),
    st.sampled_from(["+15557654321\n", " +15557654321", "+0155576543", "+1555\u0661654321", "", "\u202e+15557654321"]),
)
receivers = mostly(
    st.sampled_from([ACME_NUMBER, f"whatsapp:{ACME_NUMBER}"]),
    st.sampled_from([f"{ACME_NUMBER}\n", BRIGHT_NUMBER, "+15559999999", "", "not-a-number"]),
)
num_media = mostly(st.sampled_from([None, "0", "1", "10"]), st.sampled_from(["-1", " 2", "\u0663", "9" * 5000, "abc", ""]))
extras = mostly(st.just([]), st.lists(st.tuples(st.sampled_from(["Body", "MessageSid", "From", "To", "NumMedia", "Junk", ""]), texts), min_size=1, max_size=3))
raw_tails = mostly(st.just(b""), st.sampled_from([b"&Body2=\xff\xfe", b"&Junk=%FF%FE%ED%A0%80", b"&\x00=\x00", b"&&&", b"&=", b"&Body2"]))
content_types = mostly(
    st.sampled_from([FORM, f"{FORM}; charset=utf-8"]),
    st.sampled_from([ "application/json", "text/plain", "multipart/form-data; boundary=x", "", "text/xml"]),
)
signings = mostly(st.just("right"), st.sampled_from(["none", "wrong_token", "wrong_url", "garbage"]))


ACME_ACCOUNT = "AC00000000000000000000000000acme01"
BRIGHT_ACCOUNT = "AC0000000000000000000000000bright1"
MEDIA_URL = r"https://api\.twilio\.com/2010-04-01/Accounts/{account}/Messages/(MM|SM)[0-9a-fA-F]{{32}}/Media/ME[0-9a-fA-F]{{32}}"


def encode(pairs: list[tuple[str, str]]) -> bytes:
    """Percent-encode ``pairs`` as a browser would; lone surrogates become (invalid) UTF-8 bytes."""
    return "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in pairs
    ).encode("ascii")


def server_form(raw: bytes, content_type: str) -> MultiDict:
    """The form werkzeug decodes from ``raw`` (its urlencoded parser; empty when it cannot decode)."""
    if content_type.split(";")[0].strip() != FORM:
        return MultiDict()
    try:
        return MultiDict(parse_qsl(raw.decode(), keep_blank_values=True, errors="werkzeug.url_quote"))
    except ValueError:
        return MultiDict()


def well_formed(form: MultiDict, content_type: str, raw: bytes, signing: str) -> bool:
    """Whether the webhook should accept this request (independent of the handler's code)."""

    def single(name: str, pattern: str) -> bool:
        values = form.getlist(name)
        return len(values) == 1 and re.fullmatch(pattern, values[0]) is not None

    return (
        content_type.split(";")[0].strip() == FORM
        and len(raw) <= 64 * 1024
        and (
            # signed with the token of the tenant owning To: acme's ("right"), or bright's ("wrong_token"
            # is bright's token, which is right for a request to bright's number)
            (signing == "right" and single("To", rf"(whatsapp:)?\{ACME_NUMBER}"))
            or (signing == "wrong_token" and single("To", rf"(whatsapp:)?\{BRIGHT_NUMBER}"))
        )
        and single("MessageSid", r"(SM|MM)[0-9a-fA-F]{32}")
        and single("From", r"(whatsapp:)?\+[1-9][0-9]{6,14}")
        and len(form.getlist("Body")) <= 1
        and len(form.get("Body", "")) <= 1600
        and len(form.getlist("NumMedia")) <= 1
        and re.fullmatch(r"[0-9]{1,2}", form.get("NumMedia", "0")) is not None
        and media_well_formed(form, single)
    )


def media_well_formed(form: MultiDict, single) -> bool:
    """``NumMedia`` at most Twilio's 10, each ``MediaUrl{N}`` a media URL of the account owning ``To``, with its type."""
    count = int(form.get("NumMedia", "0"))
    account = BRIGHT_ACCOUNT if BRIGHT_NUMBER in form.get("To", "") else ACME_ACCOUNT
    return count <= 10 and all(
        single(f"MediaUrl{n}", MEDIA_URL.format(account=account)) and single(f"MediaContentType{n}", r"[a-z]+/[a-z0-9.+-]{1,100}")
        for n in range(count)
    )


@st.composite
def webhook_requests(draw):
    pairs = [
        ("MessageSid", draw(sids)),
        ("AccountSid", "AC" + "0" * 32),
        ("From", draw(senders)),
        ("To", draw(receivers)),
        ("Body", draw(texts)),
    ]
    media = draw(num_media)
    if media is not None:
        pairs.append(("NumMedia", media))
        if media in ("1", "10") and draw(st.booleans()):  # the attachments Twilio names
            account = draw(st.sampled_from([ACME_ACCOUNT, BRIGHT_ACCOUNT]))
            for n in range(int(media)):
                url = f"https://api.twilio.com/2010-04-01/Accounts/{account}/Messages/MM{'a' * 32}/Media/ME{'b' * 32}"
                pairs += [(f"MediaUrl{n}", url), (f"MediaContentType{n}", draw(st.sampled_from(["image/jpeg", "video/mp4", "bad"])))]
    pairs += draw(extras)
    if draw(st.integers(0, 19)) == 0:
        pairs += [(f"p{i}", "v") for i in range(2000)]
    pairs = draw(st.permutations(pairs))
    raw = encode(pairs) + draw(raw_tails)
    return raw, draw(content_types), draw(signings)


def headers_for(raw: bytes, content_type: str, signing: str) -> dict[str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    form = server_form(raw, content_type)
    token = AUTH_TOKENS[ACME_NUMBER]
    if signing == "right":
        headers["X-Twilio-Signature"] = sign(form, token)
    elif signing == "wrong_token":
        headers["X-Twilio-Signature"] = sign(form, AUTH_TOKENS[BRIGHT_NUMBER])
    elif signing == "wrong_url":
        headers["X-Twilio-Signature"] = sign(form, token, url="https://evil.test/twilio/messaging")
        headers["X-Forwarded-Host"] = "evil.test"  # ignored: LANEWAY_TRUSTED_PROXY_HOPS is 0
    elif signing == "garbage":
        headers["X-Twilio-Signature"] = "\x00ü=" * 3
    return headers


SID = "SM" + "a" * 32


def regression(extra: list[tuple[str, str]] = (), **fields: str) -> bytes:
    """A valid inbound SMS body with ``fields`` replaced and ``extra`` pairs appended."""
    form = {"MessageSid": SID, "From": "+15557654321", "To": ACME_NUMBER, "Body": "hi", "NumMedia": "0"} | fields
    return encode([*form.items(), *extra])


@pytest.mark.property
def test_webhook_parser_answers_4xx_or_200_and_refusals_write_nothing(client, r):
    outcomes: Counter[str] = Counter()

    @settings(max_examples=examples(MAX_EXAMPLES), deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=webhook_requests())
    # Regressions the fuzzer found (each was answered 200 and written to Redis):
    @example(case=(regression(From="+15557654321\n"), FORM, "right"))  # `$` matched before a trailing newline
    @example(case=(regression(MessageSid=SID + "\n"), FORM, "right"))  # a second dedupe id for one message
    @example(case=(regression(NumMedia="-1"), FORM, "right"))  # int() took negatives,
    @example(case=(regression(NumMedia="\u0663"), FORM, "right"))  # non-ASCII digits,
    @example(case=(regression(NumMedia=" 2"), FORM, "right"))  # and surrounding spaces
    @example(case=(regression(extra=[("Body", "second")]), FORM, "right"))  # duplicate keys: first one silently won
    @example(case=(regression(extra=[("MessageSid", "SM" + "b" * 32)]), FORM, "right"))
    # Never bugs, kept as fixed points: invalid UTF-8, U+202E / NUL / emoji bodies, 2,000 parts, JSON.
    @example(case=(regression(Body="\u202e\x00😀\ud800"), FORM, "right"))
    @example(case=(regression() + b"&Body2=\xff\xfe", FORM, "right"))
    @example(case=(regression(extra=[(f"p{i}", "v") for i in range(2000)]), FORM, "right"))
    @example(case=(b'{"MessageSid": "' + SID.encode() + b'"}', "application/json", "right"))
    @example(case=(regression(To=BRIGHT_NUMBER), FORM, "wrong_token"))  # bright's number, signed with its own token: valid
    def check(case):
        raw, content_type, signing = case
        form = server_form(raw, content_type)
        expect_ok = well_formed(form, content_type, raw, signing)
        before = r.dbsize()
        response = client.post("/twilio/messaging", data=raw, headers=headers_for(raw, content_type, signing))
        status = response.status_code
        outcomes[f"{status}{' signed' if signing == 'right' else ''}"] += 1
        assert status < 500, response.data
        if expect_ok:
            assert status == 200, (status, response.data)
            assert response.mimetype == "text/xml" and b"<Response" in response.data
        else:
            assert 400 <= status < 500, (status, response.data)
            assert response.mimetype == "application/json"
            assert json.loads(response.data)["status"] == status
            assert r.dbsize() == before, "a refused request wrote to Redis"

    check()
    print(f"\nwebhook fuzz: {sum(outcomes.values())} examples, outcomes {dict(sorted(outcomes.items()))}")
    assert outcomes["200 signed"] > 0 and sum(n for k, n in outcomes.items() if k.startswith("4")) > 0
