"""The lane agents: one module per lane, each a pure ``(turn, route) -> AgentResult``."""
