"""The ground floor every package stands on: settings, logging, Redis connections, metrics, the LLM price table.

Nothing here knows about conversations; nothing here imports another Laneway package.
"""
