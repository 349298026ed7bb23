"""Engine rows: each option's quote, implied volatility, gamma and gex per second
(see options_quotes_1s)."""

from spymaster.dbt_models import options_quotes_reader


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="delete+insert",
        # a new engine column (with a new engine version, which rebuilds every day) is added
        on_schema_change="sync_all_columns",
        unique_key=["symbol", "dt"],
    )
    # lineage: the engine reads the partitions' Parquet files itself (on any Ray node)
    dbt.ref("options_mbo")
    return options_quotes_reader(
        session=session,
        this=dbt.this,
        is_incremental=dbt.is_incremental,
        config=dbt.config.get("options_settings"),
        selection=dbt.ref("contract_day_selection"),
        definitions=dbt.ref("options_definitions"),
        statistics=dbt.ref("options_statistics"),
        book=dbt.ref("book_snapshot_1s"),
    )
