"""The built-in wording of every reply, in English and Spanish.

Each entry is either one string (said the same way on every channel) or a
``(text, voice)`` pair: the text form for SMS and WhatsApp, the voice form for
a call (``None``: the text form is fine spoken). Voice forms never say
"Reply" or "Text" and never spell a link. Tenants override any entry per
language (``translations.<lang>.templates`` in the tenants YAML).

Conventions: a template ending with a space (``intro``) is a lead that a
question follows; ``{question}`` is the pending step, restated.
"""

from __future__ import annotations

from typing import Final, Union

Wording = Union[str, tuple[str, Union[str, None]]]

EN: Final[dict[str, Wording]] = {
    # --- the guide: collecting name and number ------------------------------------------------
    "intro": ("Hi! I'm {persona} and I can help you apply by text. ", "Hi! I'm {persona} and I can help you apply. "),
    "intro_named": "Hi {first}! I'm {persona}. ",
    "thanks_name": "Thanks, {first}! ",
    "ask_full_name": "What's your first and last name?",
    "ask_last_name": "What's your last name?",
    "ask_first_name": "What's your first name?",
    "offer_own_number": (
        "Shall I text the link to the number ending {last4}? Reply YES, or send another number.",
        "Shall I text the application link to the number ending {last4}? Say yes, or tell me another number.",
    ),
    "ask_number": "What number should I text the link to?",
    "ask_number_after_no": "No problem. What number should I text the link to?",
    "bad_number": (
        "That number doesn't look right. Please send a 10-digit US number, or one starting with +.",
        "That number doesn't sound right. Please say a 10-digit number.",
    ),
    "bad_number_own": (" Or reply YES to use the number ending {last4}.", " Or say yes to use the number ending {last4}."),
    "link_here": ("Here's your application link: {link}", "I've texted you the application link."),
    "link_sent_elsewhere": "I texted the application link to the number ending {last4}.",
    "link_to_other": "Hi {first}, here's your {display_name} application link: {link}",
    "link_to_other_unnamed": "Hi, here's your {display_name} application link: {link}",
    "link_already_sent": (
        "I sent your application link to the number ending {last4}. Reply RESEND to get it again.",
        "I texted your application link to the number ending {last4}. Say resend if you'd like it again.",
    ),
    "link_already_sent_no_phone": (
        "I sent your application link earlier. Reply RESEND to get it again.",
        "I sent your application link earlier. Say resend if you'd like it again.",
    ),
    "link_again": ("Here it is again: {link}", "I've texted the link to you again."),
    "link_again_full": ("Here's your application link again: {link}", "I've texted your application link to you again."),
    "link_open_hint": (
        "Open the link whenever you're ready, and I'll guide you through each page.",
        "Open the link in the text whenever you're ready, and I'll guide you through each page.",
    ),
    "noted": "I've noted your {items}. ",
    # --- repair --------------------------------------------------------------------------------
    "corrected_name": "Got it, {new}, not {old}. ",
    "corrected_slot": "Got it, I've updated your {slot} to {new}. ",
    "resume": "Now, {question}",
    "refuse_name": (
        "I need your name to start the application; it's only used for your policy. "
        "If you'd rather not give it by text, reply AGENT and a licensed agent will help.",
        "I need your name to start the application; it's only used for your policy. "
        "If you'd rather not share it with me, say agent and I can connect you with a licensed agent.",
    ),
    "refuse_phone": (
        "I only use a number to text you the secure application link, never for marketing. "
        "Prefer not to? Reply AGENT and a licensed agent will help you instead.",
        "I only use a number to text you the secure application link, never for marketing. "
        "If you'd prefer not to, say agent and I can connect you with a licensed agent.",
    ),
    "refused_again": (
        "No problem. I can't send the application without it, so I'll leave it there. "
        "Reply AGENT any time to apply with a person, or ask me a question.",
        "No problem. I can't send the application without it. Say agent any time to apply with a person, "
        "or ask me a question.",
    ),
    "cancelled": (
        "No problem, I've stopped the application. Text APPLY any time to pick up again, or ask me a question.",
        "No problem, I've stopped the application. Just say apply any time to pick up again, or ask me a question.",
    ),
    "cancelled_nothing": (
        "Okay, nothing is in progress. Ask me a question any time, or reply AGENT for a person.",
        "Okay, nothing is in progress. Ask me a question any time, or say agent for a person.",
    ),
    "skip_required": "I need this one to send you the application link. {question}",
    "fallback_step": "Sorry, I didn't catch that. {question}",
    "no_answer_step": "I don't have an answer to that one. {resume}",
    "fallback_step_again": (
        "Sorry, I'm still not following. {question} Or reply AGENT and a person will help.",
        "Sorry, I'm still not following. {question} Or say agent and I can connect you with a person.",
    ),
    "fallback_general": (
        "Sorry, I didn't catch that. I can {abilities}.",
        "Sorry, I didn't catch that. I can {abilities}.",
    ),
    "fallback_general_again": (
        "I'm sorry, I can't help with that one. Would you like a person from our team? Reply AGENT.",
        "I'm sorry, I can't help with that one. Would you like me to connect you with a person? Just say agent.",
    ),
    "ability_apply": "help you apply",
    "ability_faq": "answer questions like \u201c{example}\u201d",
    "ability_faq_plain": "answer questions about {display_name}",
    "ability_person": ("connect you with a person (reply AGENT)", "connect you with a person"),
    "or": "or",
    "and": "and",
    "item_email": "email",
    "item_date_of_birth": "date of birth",
    "item_coverage_amount": "coverage amount",
    # --- small talk, thanks, greetings, goodbyes, returns ---------------------------------------
    "you_are_welcome": "You're welcome! ",
    "affirm_lead": "Great! ",
    "take_your_time": "No problem, take your time. I'll be right here.",
    "no_worries": "No problem{name}. Anything else I can help with?",
    "anything_else": ("Anything else I can help with?", "Is there anything else I can help with?"),
    "greeting": "Hi! ",
    "greeting_offer": (
        "Hi! I'm {persona}. I can {abilities}. What can I do for you?",
        "Hi! I'm {persona}. I can {abilities}. What can I do for you?",
    ),
    "goodbye": "Thanks for chatting with {display_name}. Take care{name}!",
    "small_talk": "I'm doing well, thanks for asking! ",
    "welcome_back": "Welcome back{name}! ",
    "where_we_were": "We were at: ",
    "handback": "Thanks for waiting{name}, I'm back with you after your chat with {operator}. ",
    "handback_plain": "Thanks for waiting{name}, I'm back with you after your chat with our team. ",
    "operator": "our team",
    # --- complaints, people, safety, languages --------------------------------------------------
    "complaint": (
        "I'm sorry about that{name}, that's frustrating. A person from our team can sort it out: "
        "reply AGENT and I'll pass you over, or tell me more here.",
        "I'm sorry about that{name}, that's frustrating. A person from our team can sort it out: "
        "say agent and I can connect you, or tell me more.",
    ),
    "sorry": "I'm sorry about that{name}. ",
    "person_can_help": (
        "A person from our team can help with that: reply AGENT and I'll pass you over, or tell me more here.",
        "A person from our team can help with that: say agent and I can connect you, or tell me more.",
    ),
    "offer_person": ("If you'd rather, reply AGENT and a person will help.", "If you'd rather, say agent and I can connect you with a person."),
    "no_problem": (
        "No problem{name}. I'm here if you change your mind: text APPLY any time, or ask me a question.",
        "No problem{name}. I'm here if you change your mind: just say apply any time, or ask me a question.",
    ),
    "help_voice": "This is {persona}. I can {abilities}. What can I do for you?",
    "opt_out_voice": (
        "Understood, I won't text you.",
        "Understood, I won't send you any texts. A licensed agent can help you by phone or email instead: "
        "just say agent and I can connect you with a person.",
    ),
    "waiting_voice": "Thanks. A person from our team will follow up with you shortly.",
    "transfer_voice": "Connecting you to a person from our team now. Please hold.",
    "callback_voice": "Sorry, nobody from our team could take your call right now. A person will call you back soon. Goodbye.",
    # --- attachments (agents/media.py): leads before the lane's reply, and the refusal ---------
    "media_thanks_photo": "Thanks for the photo. ",
    "media_thanks_pdf": "Thanks for the PDF. ",
    "media_thanks_file": "Thanks for the file. ",
    "media_refused": "Sorry, I can't open that kind of file. Please send a photo (JPEG or PNG) or a PDF instead.",
    "still_here": ("I'm still here. What can I do for you?", "I'm still here. What can I do for you?"),
    "handoff_voice_after": "A person from our team will follow up with you shortly by text.",
    "capabilities": "I'm {persona}, an automated assistant. I can {abilities}.",
    "handoff_voice": "Of course. A person from our team will follow up with you shortly by text.",
    "desk_closed": (
        "Our team is away right now. A person will answer you here from {when}.",
        "Our team is away right now. A person will follow up with you by text from {when}.",
    ),
    "day_names": "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday",
    "language_unsupported": (
        "Thanks for your message. A person from our team will reply to you here shortly.",
        "Thanks for calling. A person from our team will follow up with you shortly.",
    ),
    "language_note": "Customer writes in {language}, which this tenant does not serve; handed to a person.",
    "urgent_default": "This sounds urgent, so I've asked a person from our team to contact you right away. If anyone is in danger, call 911 now.",
    "urgent_note": "Urgent message (safety rule {rule}); emergency line given, handed to a person.",
    # --- support ---------------------------------------------------------------------------------
    "no_answer": (
        "I don't have an answer to that one. I can {abilities}.",
        "I don't have an answer to that one. I can {abilities}.",
    ),
    # --- the form ---------------------------------------------------------------------------------
    "form_submitted": "Your application is submitted. Thank you{name}! We'll be in touch soon.",
    "after_submit": "Your application is with our team now; we'll be in touch soon. Nothing else is needed from you.",
    "form_received": "Yes, your application came through. ",
    "form_changed": "I see you changed {label} from {before} to {after}.",
    "form_changed_sensitive": "I see you changed {label}.",
    "form_filled": "I see {items}.",
    "form_filled_item": "{label} is {value}",
    "form_filled_sensitive": "{label} is filled in",
    "form_next_field": "Next is {label}.",
    "form_next_question": "Next question: {question}",
    "form_page_done": "That page is complete. Tap Next for {title}.",
    "form_page_done_voice_hint": ("That page is complete. Tap Next for {title}.", "That page is done. Tap Next for {title}."),
    "form_review": "Please check your answers and tap Submit.",
    "form_which_to_fix": "No problem. Which answer should we fix? I'll point it out on your screen.",
    "form_not_opened": (
        "Open the link I texted you, and I'll guide you through each page.",
        "Open the link I texted you, and I'll guide you through each page.",
    ),
    "form_invalid": "{label} doesn't look right yet: {problem}",
    "form_invalid_number_range": "it needs a number from {min} to {max}.",
    "form_invalid_number": "it needs a number.",
    "form_invalid_height": "it's in inches, so for {feet} feet {inches} please enter {total}.",
    "form_field_where": "That's \u201c{label}\u201d on the {title} page; I've highlighted it for you.",
    "form_invalid_choice": "please pick one of: {options}.",
    "form_invalid_date": "please enter a date like 1985-03-14.",
    "form_invalid_age": "applicants must be {min} to {max} years old, so please check the year.",
    "form_invalid_email": "please enter an email address like name@example.com.",
    "form_invalid_phone": "please enter a 10-digit phone number.",
    "form_invalid_format": "please check the format.",
    "field_phrase": "your {label}",
    "form_height_hint": "For {feet} feet {inches} inches, enter {total}.",
    "form_number_range": "Enter a number from {min} to {max}.",
    "form_field_options": " The choices are: {options}.",
    "form_help_general": "I can help with any question on the form. {next}",
    "form_skip_optional": "Sure, {label} is optional. ",
    "form_skip_required": "{label} is required, so the form can't go on without it. {help}",
}

ES: Final[dict[str, Wording]] = {
    "intro": ("¡Hola! Soy {persona} y puedo ayudarle a solicitar por mensaje. ", "¡Hola! Soy {persona} y puedo ayudarle con su solicitud. "),
    "intro_named": "¡Hola, {first}! Soy {persona}. ",
    "thanks_name": "¡Gracias, {first}! ",
    "ask_full_name": "¿Cuál es su nombre y apellido?",
    "ask_last_name": "¿Cuál es su apellido?",
    "ask_first_name": "¿Cuál es su nombre?",
    "offer_own_number": (
        "¿Le envío el enlace al número que termina en {last4}? Responda SÍ, o envíe otro número.",
        "¿Le envío el enlace por mensaje al número que termina en {last4}? Diga sí, o dígame otro número.",
    ),
    "ask_number": "¿A qué número le envío el enlace?",
    "ask_number_after_no": "Está bien. ¿A qué número le envío el enlace?",
    "bad_number": (
        "Ese número no parece correcto. Envíe un número de 10 dígitos de EE. UU., o uno que empiece con +.",
        "Ese número no parece correcto. Dígame un número de 10 dígitos.",
    ),
    "bad_number_own": (" O responda SÍ para usar el número que termina en {last4}.", " O diga sí para usar el número que termina en {last4}."),
    "link_here": ("Aquí está el enlace de su solicitud: {link}", "Le envié el enlace de la solicitud por mensaje."),
    "link_sent_elsewhere": "Envié el enlace de la solicitud al número que termina en {last4}.",
    "link_to_other": "Hola, {first}: aquí está el enlace de su solicitud de {display_name}: {link}",
    "link_to_other_unnamed": "Hola: aquí está el enlace de su solicitud de {display_name}: {link}",
    "link_already_sent": (
        "Envié el enlace de su solicitud al número que termina en {last4}. Responda RESEND para recibirlo otra vez.",
        "Le envié el enlace al número que termina en {last4}. Diga reenviar si lo quiere otra vez.",
    ),
    "link_already_sent_no_phone": (
        "Ya le envié el enlace de su solicitud. Responda RESEND para recibirlo otra vez.",
        "Ya le envié el enlace de su solicitud. Diga reenviar si lo quiere otra vez.",
    ),
    "link_again": ("Aquí está otra vez: {link}", "Le envié el enlace otra vez por mensaje."),
    "link_again_full": ("Aquí está otra vez el enlace de su solicitud: {link}", "Le envié otra vez el enlace de su solicitud por mensaje."),
    "link_open_hint": "Abra el enlace cuando quiera y le guiaré en cada página.",
    "noted": "Anoté su {items}. ",
    "corrected_name": "Entendido: {new}, no {old}. ",
    "corrected_slot": "Entendido, actualicé su {slot} a {new}. ",
    "resume": "Ahora, {question}",
    "refuse_name": (
        "Necesito su nombre para empezar la solicitud; solo se usa para su póliza. "
        "Si prefiere no darlo por mensaje, responda AGENTE y un agente con licencia le ayudará.",
        "Necesito su nombre para empezar la solicitud; solo se usa para su póliza. "
        "Si prefiere no dármelo, diga agente y le comunico con un agente con licencia.",
    ),
    "refuse_phone": (
        "Solo uso el número para enviarle el enlace seguro de la solicitud, nunca para publicidad. "
        "¿Prefiere no darlo? Responda AGENTE y un agente con licencia le ayudará.",
        "Solo uso el número para enviarle el enlace seguro de la solicitud, nunca para publicidad. "
        "Si prefiere no darlo, diga agente y le comunico con un agente con licencia.",
    ),
    "refused_again": (
        "Está bien. Sin eso no puedo enviar la solicitud. Responda AGENTE cuando quiera para hacerla con una persona, o hágame una pregunta.",
        "Está bien. Sin eso no puedo enviar la solicitud. Diga agente cuando quiera para hacerla con una persona.",
    ),
    "cancelled": (
        "Está bien, detuve la solicitud. Escriba SOLICITAR cuando quiera para retomarla, o hágame una pregunta.",
        "Está bien, detuve la solicitud. Diga solicitar cuando quiera para retomarla, o hágame una pregunta.",
    ),
    "cancelled_nothing": (
        "Está bien, no hay nada en curso. Hágame una pregunta cuando quiera, o responda AGENTE para hablar con una persona.",
        "Está bien, no hay nada en curso. Hágame una pregunta cuando quiera, o diga agente para hablar con una persona.",
    ),
    "skip_required": "Necesito este dato para enviarle el enlace. {question}",
    "fallback_step": "Perdón, no le entendí. {question}",
    "no_answer_step": "No tengo una respuesta para eso. {resume}",
    "fallback_step_again": (
        "Perdón, sigo sin entender. {question} O responda AGENTE y una persona le ayudará.",
        "Perdón, sigo sin entender. {question} O diga agente y le comunico con una persona.",
    ),
    "fallback_general": "Perdón, no le entendí. Puedo {abilities}.",
    "fallback_general_again": (
        "Lo siento, no puedo ayudar con eso. ¿Quiere hablar con una persona de nuestro equipo? Responda AGENTE.",
        "Lo siento, no puedo ayudar con eso. ¿Quiere que le comunique con una persona? Diga agente.",
    ),
    "ability_apply": "ayudarle a solicitar",
    "ability_faq": "responder preguntas como \u201c{example}\u201d",
    "ability_faq_plain": "responder preguntas sobre {display_name}",
    "ability_person": ("comunicarle con una persona (responda AGENTE)", "comunicarle con una persona"),
    "or": "o",
    "and": "y",
    "item_email": "correo",
    "item_date_of_birth": "fecha de nacimiento",
    "item_coverage_amount": "monto de cobertura",
    "you_are_welcome": "¡De nada! ",
    "affirm_lead": "¡Perfecto! ",
    "take_your_time": "Claro, tómese su tiempo. Aquí estaré.",
    "no_worries": "Está bien{name}. ¿Le puedo ayudar con algo más?",
    "anything_else": "¿Le puedo ayudar con algo más?",
    "greeting": "¡Hola! ",
    "greeting_offer": "¡Hola! Soy {persona}. Puedo {abilities}. ¿En qué le ayudo?",
    "goodbye": "Gracias por escribir a {display_name}. ¡Que le vaya bien{name}!",
    "small_talk": "¡Muy bien, gracias por preguntar! ",
    "welcome_back": "¡Bienvenido de nuevo{name}! ",
    "where_we_were": "Estábamos en: ",
    "handback": "Gracias por esperar{name}, sigo con usted después de su conversación con {operator}. ",
    "handback_plain": "Gracias por esperar{name}, sigo con usted después de su conversación con nuestro equipo. ",
    "operator": "nuestro equipo",
    "complaint": (
        "Lamento mucho eso{name}. Una persona de nuestro equipo puede resolverlo: responda AGENTE y le comunico, o cuénteme más aquí.",
        "Lamento mucho eso{name}. Una persona de nuestro equipo puede resolverlo: diga agente y le comunico, o cuénteme más.",
    ),
    "sorry": "Lamento mucho eso{name}. ",
    "person_can_help": (
        "Una persona de nuestro equipo puede ayudarle con eso: responda AGENTE y le comunico, o cuénteme más aquí.",
        "Una persona de nuestro equipo puede ayudarle con eso: diga agente y le comunico, o cuénteme más.",
    ),
    "offer_person": ("Si prefiere, responda AGENTE y una persona le ayudará.", "Si prefiere, diga agente y le comunico con una persona."),
    "no_problem": (
        "Está bien{name}. Aquí estoy si cambia de opinión: escriba SOLICITAR cuando quiera, o hágame una pregunta.",
        "Está bien{name}. Aquí estoy si cambia de opinión: diga solicitar cuando quiera, o hágame una pregunta.",
    ),
    "help_voice": "Habla {persona}. Puedo {abilities}. ¿En qué le puedo ayudar?",
    "opt_out_voice": (
        "Entendido, no le enviaré mensajes.",
        "Entendido, no le enviaré mensajes. Un agente con licencia puede ayudarle por teléfono o correo: "
        "diga agente y le comunico con una persona.",
    ),
    "waiting_voice": "Gracias. Una persona de nuestro equipo le contactará en breve.",
    "transfer_voice": "Le comunico ahora con una persona de nuestro equipo. Por favor, espere.",
    "callback_voice": "Lo siento, nadie de nuestro equipo puede atender su llamada ahora. Una persona le devolverá la llamada pronto. Adiós.",
    "media_thanks_photo": "Gracias por la foto. ",
    "media_thanks_pdf": "Gracias por el PDF. ",
    "media_thanks_file": "Gracias por el archivo. ",
    "media_refused": "Perdón, no puedo abrir ese tipo de archivo. Envíe una foto (JPEG o PNG) o un PDF, por favor.",
    "still_here": "Sigo aquí. ¿En qué le puedo ayudar?",
    "handoff_voice_after": "Una persona de nuestro equipo le contactará en breve por mensaje.",
    "capabilities": "Soy {persona}, un asistente automático. Puedo {abilities}.",
    "handoff_voice": "Claro. Una persona de nuestro equipo le contactará en breve por mensaje.",
    "desk_closed": (
        "Nuestro equipo no está disponible ahora. Una persona le responderá aquí a partir del {when}.",
        "Nuestro equipo no está disponible ahora. Una persona le escribirá a partir del {when}.",
    ),
    "day_names": "lunes,martes,miércoles,jueves,viernes,sábado,domingo",
    "urgent_default": "Parece urgente, así que pedí a una persona de nuestro equipo que le contacte de inmediato. Si alguien está en peligro, llame al 911 ahora.",
    "language_unsupported": "Gracias por su mensaje. Una persona de nuestro equipo le responderá en breve.",
    "no_answer": "No tengo una respuesta para eso. Puedo {abilities}.",
    "form_submitted": "Su solicitud está enviada. ¡Gracias{name}! Le contactaremos pronto.",
    "after_submit": "Su solicitud ya está con nuestro equipo; le contactaremos pronto. No necesita hacer nada más.",
    "form_received": "Sí, su solicitud llegó bien. ",
    "form_changed": "Veo que cambió {label} de {before} a {after}.",
    "form_changed_sensitive": "Veo que cambió {label}.",
    "form_filled": "Veo que {items}.",
    "form_filled_item": "{label} es {value}",
    "form_filled_sensitive": "{label} está completo",
    "form_next_field": "Lo siguiente es {label}.",
    "form_next_question": "Siguiente pregunta: {question}",
    "form_page_done": "Esa página está completa. Toque Siguiente para {title}.",
    "form_review": "Revise sus respuestas y toque Enviar.",
    "form_which_to_fix": "Está bien. ¿Qué respuesta corregimos? Se la señalo en su pantalla.",
    "form_not_opened": "Abra el enlace que le envié y le guiaré en cada página.",
    "form_invalid": "{label} aún no es válido: {problem}",
    "form_invalid_number_range": "necesita un número de {min} a {max}.",
    "form_invalid_number": "necesita un número.",
    "form_invalid_height": "va en pulgadas, así que para {feet} pies {inches} escriba {total}.",
    "form_field_where": "Es \u201c{label}\u201d en la página {title}; se lo resalté en la pantalla.",
    "form_invalid_choice": "elija una de: {options}.",
    "form_invalid_date": "escriba una fecha como 1985-03-14.",
    "form_invalid_age": "los solicitantes deben tener de {min} a {max} años; revise el año.",
    "form_invalid_email": "escriba un correo como nombre@ejemplo.com.",
    "form_invalid_phone": "escriba un número de 10 dígitos.",
    "form_invalid_format": "revise el formato.",
    "form_field_options": " Las opciones son: {options}.",
    "field_phrase": "su {label}",
    "form_height_hint": "Para {feet} pies {inches} pulgadas, escriba {total}.",
    "form_number_range": "Escriba un número de {min} a {max}.",
    "form_help_general": "Puedo ayudarle con cualquier pregunta del formulario. {next}",
    "form_skip_optional": "Claro, {label} es opcional. ",
    "form_skip_required": "{label} es obligatorio, así que el formulario no puede seguir sin eso. {help}",
}

CATALOG: Final[dict[str, dict[str, Wording]]] = {"en": EN, "es": ES}
"""Built-in wording by language code; English holds every key."""

LANGUAGE_NAMES: Final[dict[str, str]] = {
    "en": "English", "es": "Spanish", "fr": "French", "pt": "Portuguese", "de": "German", "it": "Italian",
    "zh": "Chinese", "vi": "Vietnamese", "ko": "Korean", "ru": "Russian", "ar": "Arabic", "tl": "Tagalog",
    "ja": "Japanese", "pl": "Polish", "nl": "Dutch", "hi": "Hindi",
}
"""English names of languages, for the operator's note."""

GREETING_WORDS: Final[dict[str, frozenset[str]]] = {
    "en": frozenset({"hi", "hello", "hey", "hi there", "hello there", "good morning", "good afternoon", "good evening"}),
    "es": frozenset({"hola", "buenas", "buenos dias", "buenos días", "buenas tardes", "buenas noches", "hola buenas",
                     "hola buenos dias", "hola buenos días", "hola buenas tardes", "saludos"}),
}
"""Whole-message greetings per language: the one case where a message is too short for the
language detector and still says which language the customer speaks."""
