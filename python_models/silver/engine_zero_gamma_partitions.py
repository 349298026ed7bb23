"""The zero-gamma level per second, in the lake's engine partitions; one row per
contract-day's partition (read through the engine_zero_gamma_1s view, then gex_surface_1s)."""

from gex.warehouse import quote_day_partitions


def model(dbt, session):
    # the lake's partitions are the incremental state: the options engine writes each day's as
    # it computes the quotes; a day without one (or summed with other settings) is summed here
    dbt.config(materialized="table")
    return quote_day_partitions(
        "zero_gamma_1s",
        config=dbt.config.get("options_settings"),
        quote_partitions=dbt.ref("engine_options_quote_partitions"),
        quotes=dbt.ref("engine_options_quotes_1s"),
    )
