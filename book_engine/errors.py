"""Bad input to the engine: the message names the record (callers add the partition)."""


class EngineError(ValueError):
    """Records the engine refuses to replay."""


def instrument_list(ids: list[int], shown: int = 10) -> str:
    """Instrument ids for a message: the first few, and how many there are (a day's options
    without definitions are thousands)."""
    if len(ids) <= shown:
        return str(ids)
    return f"{str(ids[:shown])[:-1]}, ...] ({len(ids):,} in all)"
