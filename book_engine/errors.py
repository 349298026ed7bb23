"""Bad input to the engine: the message names the record (callers add the partition)."""


class EngineError(ValueError):
    """Records the engine refuses to replay."""
