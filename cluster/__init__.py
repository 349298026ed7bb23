"""Beyond one machine: ingest's files and the engine's contract-days as Ray tasks."""
