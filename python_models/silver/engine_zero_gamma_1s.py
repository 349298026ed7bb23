"""The zero-gamma level per second, from the options' quotes (see gex_surface_1s)."""

from spymaster.dbt_models import quote_day_reader


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="delete+insert",
        # a new engine column (with a new engine version, which rebuilds every day) is added
        on_schema_change="sync_all_columns",
        unique_key=["symbol", "dt"],
    )
    return quote_day_reader(
        "zero_gamma_1s",
        session=session,
        this=dbt.this,
        is_incremental=dbt.is_incremental,
        config=dbt.config.get("options_settings"),
        quote_partitions=dbt.ref("engine_options_quote_partitions"),
        quotes=dbt.ref("engine_options_quotes_1s"),
    )
