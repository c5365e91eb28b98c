"""The exception root of ``edgeledger.agent``: ``AgentError`` (errors of the device itself:
its configuration, its sources, its outbox). What the protocol codecs raise stays a
``protocols.errors.ProtocolError``; the crypto package raises ValueError for bad lengths
and ``crypto.errors.CcmAuthError`` (a SignatureError)."""


class AgentError(Exception):
    """Root of every error raised in edgeledger.agent."""


class SourceError(AgentError):
    """A field-bus or simulated source could not produce a reading."""


class OutboxError(AgentError):
    """The outbox cannot store or read a record."""


class OutboxFull(OutboxError):
    """The outbox is at its bound and the policy refuses the new record."""


class ConfigError(AgentError):
    """The agent configuration is missing something or has a wrong value."""
