"""Development-only tools: the local Twilio stand-in and the ``laneway run`` helpers.

Nothing here is used in production (the Procfile never starts it).
"""
