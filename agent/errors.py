"""The exception root of ``edgeledger.agent``.

Listed as a table (name: base) and built on first use under MicroPython, for
the reason given in ``protocols/errors.py``: the agent's happy path raises none
of them, and each class would cost a board ~250 B of heap. ``errors.OutboxFull``
and ``from edgeledger.agent.errors import OutboxFull`` both work; CPython builds
them all at import.
"""
from edgeledger.protocols.errors import build_all, class_from_table

CLASSES = {
    # Root of every error raised in edgeledger.agent.
    "AgentError": Exception,
    # A field-bus or simulated source could not produce a reading.
    "SourceError": "AgentError",
    # The outbox cannot store or read a record.
    "OutboxError": "AgentError",
    # The outbox is at its bound and the policy refuses the new record.
    "OutboxFull": "OutboxError",
    # The agent configuration is missing something or has a wrong value.
    "ConfigError": "AgentError",
}


def __getattr__(name):
    return class_from_table(CLASSES, globals(), name, __name__)


build_all(CLASSES, globals(), __name__)
