"""Bronze landing: Databento DBN files to hive-partitioned Parquet in the lake."""
