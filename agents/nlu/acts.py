"""Dialogue acts: what a message does (says yes, thanks, complains, corrects …), in English and Spanish.

Acts are independent of the intent and of each other: "no thanks, bye" is
``deny``, ``thanks`` and ``goodbye``. They are rules over the normalised
words (:func:`agents.text.words`), short lists per language, because the acts
are closed classes of short formulaic phrases (the way Rasa's CALM patterns
recognise them), and the rules are exact where a classifier would guess:

* ``affirm``/``deny``: the message opens with a yes/no word or is a yes/no
  phrase ("yeah that's my cell", "ok do it", "sounds good", "claro",
  "different number"); a negation in a short message makes it ``deny``,
  never ``affirm``.
* ``thanks``, ``greet``, ``goodbye``, ``small_talk``: formulas.
* ``refuse``: declines to give something ("I'd rather not say").
* ``correct``: the entities hold a correction (:mod:`agents.nlu.entities`).
* ``complain``, ``urgent``, ``ask_human``: complaint words; an emergency
  (medical or safety); a request for a person (:func:`agents.intents.human_match`).
* ``cancel``, ``skip``: stops or skips the current flow ("never mind", "skip").
* ``out_of_scope``: asks for something no tenant does (jokes, the weather).
* ``question``: question-shaped (a ``?``, or an English or Spanish question word first).
"""

from __future__ import annotations

import re
from typing import Final

from agents.intents import human_match
from agents.nlu.models import Act, Entities
from agents.text import words

SHORT_ANSWER_WORDS: Final = 6
"""A yes or no that opens a message counts when the message has at most this many words."""

YES_WORDS: Final = frozenset(
    "yes yeah yea yep yup ya yas yess yesss sure ok okay k kk y correct right fine affirmative absolutely "
    "definitely certainly alright aight perfect great cool exactly indeed yessir yesir yeh yah ye yeppers mhm bet "
    "si sí sip sipi simón claro vale dale correcto exacto bueno listo oui sim".split()
)
YES_PHRASES: Final = (
    "go ahead", "do it", "sounds good", "that works", "please do", "this number", "this one", "same number",
    "that's fine", "that's right", "that's me", "that's correct", "that's my", "thats my", "it is", "of course",
    "let's do it", "lets do it", "let's go", "lets go", "use this", "use that", "why not", "works for me",
    "go for it", "let's start", "lets start", "uh huh", "mm hmm", "yes please",
    "por supuesto", "está bien", "esta bien", "de acuerdo", "así es", "asi es", "ese es", "este número", "este numero",
    "me parece bien", "adelante", "hazlo",
)  # fmt: skip
NO_WORDS: Final = frozenset("no nope nah nay n negative non não nao".split())
NO_PHRASES: Final = (
    "not really", "no way", "not now", "not yet", "different number", "another number", "not this one",
    "not this number", "not that one", "wrong number", "don't", "do not", "i'd rather not", "otro número",
    "otro numero", "todavía no", "todavia no", "aún no", "aun no",
)  # fmt: skip
NEGATIONS: Final = frozenset({"no", "not", "don't", "dont", "never", "nope", "nah", "nunca"})

_THANKS = re.compile(
    r"\b(?:thanks|thank\s+you|thank\s+u|thx|thnx|tks|ty|tysm|appreciate\s+it|much\s+appreciated|cheers|"
    r"gracias|muchas\s+gracias|mil\s+gracias|merci|obrigad[oa])\b"
)
_GREET = re.compile(
    r"^(?:hi|hii+|hello|helo|hey+|heya|hiya|yo|howdy|greetings|good\s+(?:morning|afternoon|evening|day)|"
    r"hola|buen[oa]s(?:\s+(?:d[ií]as|tardes|noches))?|bonjour|ol[aá]|oi)\b"
)
_GOODBYE = re.compile(
    r"\b(?:bye|goodbye|good\s+bye|bye\s+bye|see\s+(?:you|ya)|talk\s+(?:to\s+you\s+)?later|ttyl|have\s+a\s+(?:good|nice|great)\s+"
    r"(?:day|one|night|evening|weekend)|good\s+night|that'?s\s+all|that\s+is\s+all|that'?s\s+it|"
    r"adi[oó]s|chao|chau|hasta\s+luego|hasta\s+pronto|nos\s+vemos|eso\s+es\s+todo|au\s+revoir|tchau)\b"
)
_SMALL_TALK = re.compile(
    r"\b(?:how\s+are\s+(?:you|u)|how\s+r\s+u|how'?s\s+it\s+going|how\s+is\s+it\s+going|how'?s\s+your\s+day|"
    r"what'?s\s+up|wassup|sup|nice\s+(?:weather|day)|lol|lmao|haha+|hehe+|"
    r"(?:are\s+)?(?:you|u)\s+(?:still\s+)?there|any(?:one|body)\s+there|(?:est[aá]s?|sigue)\s+ah[ií]|"
    r"c[oó]mo\s+est[aá]s?|qu[eé]\s+tal|c[oó]mo\s+te\s+va|jaja+)\b"
    r"|[\U0001F600-\U0001F64F]"
)
_REFUSE = re.compile(
    r"\b(?:i'?d\s+rather\s+not|rather\s+not|prefer\s+not|i\s+don'?t\s+want\s+to\s+(?:give|share|say|tell|provide)|"
    r"not\s+(?:comfortable|giving|sharing)|i\s+won'?t\s+(?:give|share|say|tell)|none\s+of\s+your\s+business|"
    r"why\s+do\s+you\s+need|no\s+quiero\s+(?:dar|decir|compartir)|prefiero\s+no)\b"
)
_COMPLAIN = re.compile(
    r"\b(?:complaint|complain|complaining|terrible|horrible|awful|ridiculous|unacceptable|worst|useless|"
    r"frustrat\w*|annoy\w*|angry|upset|unhappy|disappointed|fed\s+up|scam|rip\s*off|(?:is|what)\s+a\s+joke|rude|disrespectful|"
    r"keeps?\s+(?:crashing|failing|freezing|breaking)|crash(?:es|ed|ing)?|not\s+working|doesn'?t\s+work|"
    r"don'?t\s+work|won'?t\s+(?:load|work|open)|broken|"
    r"(?:nobody|no\s+one|no\s+body)\s+(?:ever\s+|even\s+|has\s+|will\s+)?(?:calls?|called|answers?|answered|replies|reply|"
    r"replied|responds?|responded|picks?\s+up|picked\s+up|gets?\s+back|got\s+back|returns?|returned)|"
    r"been\s+waiting|still\s+waiting|waiting\s+for\s+(?:days|weeks|hours)|"
    r"(?:didn'?t|did\s+not|never|wouldn'?t|won'?t)\s+(?:even\s+)?(?:listen|bother|show\s+up|call\s+(?:me\s+)?back|get\s+back|"
    r"return\s+my|answer\s+my|help\s+me\s+at\s+all)|on\s+hold\s+for|hung\s+up\s+on|waste\s+of\s+(?:my\s+)?time|"
    r"messed\s+up|screwed\s+up|not\s+happy|poor\s+service|bad\s+(?:experience|service)|lost\s+my\s+(?:file|records|paperwork)|"
    r"mal\s+servicio|mala\s+experiencia|no\s+me\s+(?:escuch\w+|atendi\w+|llamaron)|"
    r"queja|quejarme|molest[oa]|enojad[oa]|p[eé]sim[oa]|horrible|no\s+funciona|nadie\s+me\s+(?:llam[oó]|contest[oó]))\b"
)
_URGENT = re.compile(
    r"\b(?:emergency|urgent|urgently|911|chest\s+pains?|heart\s+attack|stroke|can'?t\s+breathe|cannot\s+breathe|"
    r"trouble\s+breathing|short(?:ness)?\s+of\s+breath|bleeding|unconscious|passed\s+out|fainted|seizure|"
    r"overdos\w*|suicid\w*|kill\s+myself|hurt\s+myself|end\s+my\s+life|severe\s+pain|allergic\s+reaction|"
    r"anaphyla\w*|choking|poison\w*|collapsed|not\s+breathing|isn'?t\s+breathing|not\s+responding|"
    r"isn'?t\s+responding|unresponsive|won'?t\s+wake\s+up|can'?t\s+wake|turning\s+blue|"
    r"swallowed\s+(?:a\s+bunch\s+of\s+|some\s+|the\s+|his\s+|her\s+|my\s+)?(?:pills|medicine|bleach|poison|battery|batteries)|"
    r"won'?t\s+stop\s+bleeding|cut\s+\w+\s+\w+\s+badly|severe\s+bleeding|"
    r"emergencia|urgente|dolor\s+(?:de|en\s+el)\s+pecho|no\s+puedo\s+respirar|sangrando|sangrado|desmay\w*|"
    r"infarto|convulsi\w*|suicidarme|sobredosis|no\s+responde|no\s+reacciona|no\s+despierta|se\s+tragó|se\s+trago|"
    r"se\s+(?:cayó|cayo)\s+y\s+no|"
    # the same emergencies in other words: chest or heart, stroke signs, too many pills, swelling throat,
    # not wanting to live, heavy bleeding, a very high fever or a limp baby
    r"chest\s+(?:\w+\s+){0,2}(?:hurts?|hurting|pains?|tight|tightness|pressure|crushing)|"
    r"(?:arm|face|side)\s+(?:is\s+|went\s+|goes\s+|feels\s+)?(?:numb|drooping|droopy)|slurred\s+speech|"
    r"(?:took|taken|swallowed)\s+(?:way\s+|far\s+)?too\s+many|(?:took|taken|swallowed|had)\s+(?:way\s+|far\s+)?too\s+much\s+"
    r"(?:of\s+)?(?:my\s+|his\s+|her\s+|their\s+)?(?:medicine|medication|meds|insulin|tylenol|acetaminophen|painkillers)|"
    r"(?:throat|tongue|lips?|face)\s+(?:is\s+|are\s+|keeps\s+)?(?:swelling|swollen|closing)|"
    r"(?:don'?t|do\s+not)\s+want\s+to\s+(?:live|be\s+alive|be\s+here\s+anymore|wake\s+up)|want\s+to\s+die|"
    r"better\s+off\s+dead|end\s+it\s+all|"
    r"blood\s+everywhere|(?:losing|lost)\s+(?:a\s+lot\s+of\s+|so\s+much\s+)?blood|(?:coughing|throwing|vomiting)\s+(?:up\s+)?blood|"
    r"fever\s+(?:of\s+|is\s+)?(?:10[3-9]|4[0-2])|(?:is|really|very|so|gone|went)\s+(?:limp|floppy)|(?:lips|face|skin)\s+(?:is\s+|are\s+)?(?:blue|grey|gray)|"
    r"(?:ate|drank|swallowed|got\s+into)\s+(?:some\s+(?:of\s+)?|a\s+(?:lot|bunch)\s+of\s+)?(?:my\s+|his\s+|her\s+|the\s+|their\s+)?"
    r"(?:\w+\s+)?(?:pills|tablets|medicine|medication|meds|bleach|poison|detergent|cleaner|antifreeze|batteries|battery)|"
    r"heart\s+(?:is\s+)?(?:racing|pounding)|end(?:ing)?\s+(?:my\s+life|it\s+all)|(?:hurt|hurting|harm|harming|kill|killing)\s+myself|"
    r"(?:fell|fallen)\s+(?:\w+\s+){0,5}(?:can'?t|cannot|couldn'?t)\s+get\s+up|hit\s+(?:his|her|my|their)\s+head|stiff\s+neck|"
    r"worst\s+headache|headache\s+(?:\w+\s+){0,3}worst|"
    r"no\s+puede\s+respirar|no\s+respira|(?:me|le)\s+duele\s+(?:mucho\s+)?el\s+pecho|"
    r"ataque\s+(?:al\s+coraz[oó]n|card[ií]aco)|no\s+quiero\s+vivir|quiero\s+morir(?:me)?)\b"
)
_CANCEL = re.compile(
    r"\b(?:never\s*mind|nvm|forget\s+it|forget\s+about\s+it|cancel(?:\s+(?:it|that|this|the\s+application|my\s+application))?|"
    r"changed\s+my\s+mind|don'?t\s+want\s+to\s+(?:apply|continue|do\s+this)\s*(?:anymore)?|stop\s+the\s+application|"
    r"olv[ií]dalo|cancelar|cancela|ya\s+no\s+quiero|cambi[eé]\s+de\s+opini[oó]n)\b"
)
_ASKS_ABOUT_CANCELLING = re.compile(
    r"\b(?:can|could|may)\s+i\s+(?:\w+\s+)?cancel|\bhow\s+(?:do|can|would)\s+i\s+cancel|\bhow\s+to\s+cancel|"
    r"\b(?:is|are)\s+(?:there|it)\s+(?:\w+\s+){0,3}cancel|\bcancel(?:lation)?\s+(?:policy|fee|fees|anytime|any\s+time|later)|"
    r"\bpuedo\s+cancelar|\bc[oó]mo\s+cancel"
)
_SKIP = re.compile(
    r"^(?:skip|pass|next|next\s+question|skip\s+(?:it|this|that)(?:\s+(?:one|question))?|"
    r"(?:i'?ll|i\s+will|can\s+i)\s+(?:do|answer|fill)\s+(?:that|this|it)\s+later|later|"
    r"saltar|s[aá]ltalo|siguiente|omitir|paso|despu[eé]s)$"
    r"|\b(?:skip\s+(?:this|that|it)|rather\s+skip)\b"
)
_OUT_OF_SCOPE = re.compile(
    r"\b(?:weather|joke|jokes|recipe|pizza|sports?|score|bitcoin|crypto|stock\s+price|homework|poem|song|movie|"
    r"tell\s+me\s+a\s+story|meaning\s+of\s+life|clima|chiste|receta)\b"
)
_QUESTION_WORDS: Final = frozenset(
    "how what when where why who which can could do does did is are will would should "
    "qué que cómo como cuándo cuando dónde donde cuánto cuanto cuánta cuanta cuántos cuantos por quién quien cuál cual "
    "puedo puede hay tienen".split()
)
_SPANISH_ONLY_QUESTION_OPENERS: Final = frozenset({"que", "como", "cuando", "donde", "cuanto", "quien", "cual", "por"})


_THUMBS_UP = re.compile("^[\\s\U0001F44D\U0001F44C\u2705\u2714\uFE0F\U0001F3FB-\U0001F3FF!]+$")
"""A message of only a thumbs up, an OK hand or a check mark (any skin tone): a yes."""


def _is_question(text: str, ws: list[str]) -> bool:
    if "?" in text or "¿" in text:
        return True
    if not ws:
        return False
    first = re.sub(r"'(?:s|re|d|ll)$", "", ws[0])  # "what's the max coverage", "where's the entrance"
    if first in _SPANISH_ONLY_QUESTION_OPENERS and len(ws) < 2:
        return False
    return first in _QUESTION_WORDS


def _alternation(options: tuple[str, ...]) -> str:
    return "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))


_OPENS_YES = re.compile(rf"^(?:{_alternation(YES_PHRASES)})(?:\s|$)")
_OPENS_NO = re.compile(rf"^(?:{_alternation(NO_PHRASES)})(?:\s|$)")
_HAS_YES = re.compile(rf"(?:^|\s)(?:{_alternation(YES_PHRASES)})(?:\s|$)")


def detect_acts(text: str, entities: Entities) -> frozenset[Act]:
    """Return the dialogue acts ``text`` performs.

    Args:
        text: the message.
        entities: its entities (a correction makes the ``correct`` act).

    Returns:
        A frozenset of :data:`agents.nlu.models.Act`; empty for a message that
        only states something ("my wife wants coverage too").
    """
    ws = words(text)
    phrase = " ".join(ws)
    acts: set[Act] = set()
    if not ws:
        return frozenset({"affirm"}) if _THUMBS_UP.search(text) else frozenset()
    question = _is_question(text, ws)
    if question:
        acts.add("question")
    short = len(ws) <= SHORT_ANSWER_WORDS
    negated = bool(NEGATIONS & set(ws))
    lead = ws[1:] if ws[0] in {"oh", "well", "um", "uh", "hmm", "so", "and"} and len(ws) > 1 else ws
    lead_phrase = " ".join(lead)
    if lead[0] in NO_WORDS or (short and _OPENS_NO.search(lead_phrase)):
        acts.add("deny")
    elif not question and not negated and (
        lead[0] in YES_WORDS or _OPENS_YES.search(lead_phrase) or (short and _HAS_YES.search(phrase))
    ):
        acts.add("affirm")
    if _THANKS.search(phrase):
        acts.add("thanks")
    if _GREET.search(phrase) or "👋" in text:
        acts.add("greet")
    if _GOODBYE.search(phrase):
        acts.add("goodbye")
    if _SMALL_TALK.search(phrase) or _SMALL_TALK.search(text):
        acts.add("small_talk")
    if _REFUSE.search(phrase):
        acts.add("refuse")
    if entities.correction is not None:
        acts.add("correct")
    if _COMPLAIN.search(phrase):
        acts.add("complain")
    if _URGENT.search(phrase):
        acts.add("urgent")
    person = human_match(text)
    if person is not None and not (question and person.evidence.startswith(("word:", "typo:"))):
        # "are your agents available in the evening?" names agents; it does not ask for one
        acts.add("ask_human")
    if _CANCEL.search(phrase) and not (question and _ASKS_ABOUT_CANCELLING.search(phrase)):
        acts.add("cancel")  # "can I cancel anytime?" asks about the policy; it stops nothing
    if _SKIP.search(phrase):
        acts.add("skip")
    if _OUT_OF_SCOPE.search(phrase):
        acts.add("out_of_scope")
    return frozenset(acts)
