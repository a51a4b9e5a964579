"""Development-only tools: the Twilio and OpenAI stand-ins, ``laneway run``, chat, demo, bench and the evals.

Nothing here is used in production (the Procfile never starts it, and no
runtime package imports it).
"""
