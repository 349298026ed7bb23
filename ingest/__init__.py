"""Bronze landing: Databento DBN files to hive-partitioned Parquet in the lake."""

# records decoded at a time per file: bounds a worker's memory (`spymaster ingest --chunk-records`)
DEFAULT_CHUNK_RECORDS = 1 << 18
