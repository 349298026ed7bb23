"""The one error type of ingest: its message names the file, record or partition at fault."""


class IngestError(Exception):
    """Raw input that cannot land; nothing already landed was changed."""
