"""Attachments in a turn: the lane's reply acknowledges them.

The inbound webhook writes one marker per attachment into the message text
(:func:`state.models.media_marker`: ``[photo]``, ``[PDF]``, ``[file not accepted]`` …), so
every lane sees them as words. :func:`acknowledge_media` puts a short lead
before the lane's first reply ("Thanks for the photo. "), or, for a type the
tenant does not accept, a polite refusal (alone when the customer wrote no
words with the file); a lane that said nothing still answers with the lead's
sentence. Pure.
"""

from __future__ import annotations

from agents.base import AgentResult, OutboundDraft, TurnInput
from agents.templates import render
from state.models import MEDIA_MARKERS, MEDIA_REFUSED_MARKER

LEADS = (("[photo]", "media_thanks_photo"), ("[PDF]", "media_thanks_pdf"), ("[file]", "media_thanks_file"))
"""Marker → template of its lead, first match wins."""


def acknowledge_media(turn: TurnInput, result: AgentResult) -> AgentResult:
    """``result`` with its first reply to the customer led by an acknowledgement of the turn's attachments.

    No markers in ``turn.text``: ``result`` unchanged. A refused attachment
    gets the ``media_refused`` sentence as its own reply, first.
    """
    language, channel = turn.state.language, turn.channel
    if MEDIA_REFUSED_MARKER in turn.text:
        refusal = OutboundDraft(text=render(turn.tenant, language, channel, "media_refused"))
        words = turn.text
        for marker in MEDIA_MARKERS:
            words = words.replace(marker, "")
        others = [d for d in result.outbound if d.to is not None or words.strip()]
        return result.model_copy(update={"outbound": [refusal, *others]})
    key = next((k for marker, k in LEADS if marker in turn.text), None)
    if key is None:
        return result
    lead = render(turn.tenant, language, channel, key)
    drafts = list(result.outbound)
    first = next((i for i, d in enumerate(drafts) if d.to is None), None)
    if first is None:
        drafts.insert(0, OutboundDraft(text=lead.strip()))
    else:
        drafts[first] = drafts[first].model_copy(update={"text": lead + drafts[first].text})
    return result.model_copy(update={"outbound": drafts})
