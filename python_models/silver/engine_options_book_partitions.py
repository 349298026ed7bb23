"""The book engine over the options: each option's top of book after each second's last
event, written to the lake's engine partitions for the options engine's quotes; one row per
contract-day's partition. It needs no spot, so dbt runs it beside the futures' replay."""

from gex.warehouse import options_book_partitions


def model(dbt, session):
    # the lake's partitions are the incremental state: a contract-day whose partition was
    # written from the same inputs and settings (its build fingerprint) is not replayed again
    dbt.config(materialized="table")
    # lineage: the engine reads the partitions' Parquet files itself (on any Ray node)
    dbt.ref("options_mbo")
    return options_book_partitions(
        config=dbt.config.get("options_settings"),
        selection=dbt.ref("contract_day_selection"),
        definitions=dbt.ref("options_definitions"),
        statistics=dbt.ref("options_statistics"),
    )
