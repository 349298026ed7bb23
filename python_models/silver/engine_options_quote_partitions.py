"""The options engine: each option's quote, implied volatility, gamma and gex per second,
from the options' book by second (engine_options_book_partitions) and the future's spot,
written to the lake's engine partitions; one row per contract-day's partition (read through
the engine_options_quotes_1s view, then options_quotes_1s)."""

from gex.warehouse import options_quote_partitions


def model(dbt, session):
    # the lake's partitions are the incremental state: a contract-day whose partition was
    # written from the same inputs and settings (its build fingerprint) is not recomputed
    dbt.config(materialized="table")
    # lineage: the engine reads the partitions' Parquet files itself (on any Ray node)
    dbt.ref("options_mbo")
    # the options' replay, written to the lake (engine_options_book_partitions)
    dbt.ref("engine_options_book_partitions")
    return options_quote_partitions(
        config=dbt.config.get("options_settings"),
        selection=dbt.ref("contract_day_selection"),
        definitions=dbt.ref("options_definitions"),
        statistics=dbt.ref("options_statistics"),
        book=dbt.ref("book_snapshot_1s"),
    )
