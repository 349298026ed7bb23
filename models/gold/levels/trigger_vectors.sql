{{ config(materialized='day_partitioned') }}

{%- set seconds = var('feature_window_seconds') -%}
{%- set level_columns = level_feature_columns() | map(attribute=0) | list -%}
{%- set market_columns = market_feature_columns() | map(attribute=0) | list -%}
-- One row per trigger at a real level (approach_triggers): the feature window holding the
-- trigger second, its level and direction, and the feature vector at the window's end: the level's own
-- features then the market-wide ones, each as the blocks of feature_blocks(), in the order of
-- trigger_feature_catalog. Everything in a row is known at `ts`.
with triggers as (
    select
        trigger_id,
        episode_id,
        symbol,
        dt,
        ts,
        window_start,
        trigger_second,
        zone_entry_ts,
        level_id,
        level_price,
        approach_dir,
        minutes_since_open
    from {{ ref('approach_triggers') }}
    where level_kind = 'real' and {{ in_build_days() }}
),

level_features as (
    select
        symbol,
        dt,
        window_start,
        level_id,
        window_valid,
        {%- for column in level_columns %}
        {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('level_features') }}
    where {{ in_build_days() }}
),

market_features as (
    select
        symbol,
        dt,
        window_start,
        window_valid,
        {%- for column in market_columns %}
        {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('market_features') }}
    where {{ in_build_days() }}
),

{{ feature_block_ctes('level_features', level_columns, ['symbol', 'dt', 'level_id'], 'level') }},

{{ feature_block_ctes('market_features', market_columns, ['symbol', 'dt'], 'market') }},

final as (
    select
        triggers.trigger_id,
        triggers.episode_id,
        triggers.symbol,
        triggers.dt,
        triggers.ts,
        triggers.window_start,
        triggers.trigger_second,
        triggers.zone_entry_ts,
        triggers.level_id,
        triggers.level_price,
        triggers.approach_dir,
        level_blocks.distance_ticks,
        triggers.minutes_since_open,
        level_blocks.window_valid and market_blocks.window_valid as window_valid,
        [
            {%- for column in level_columns %}
            {%- for block, _ in feature_blocks() %}
            level_blocks.{{ block_column(column, block) }},
            {%- endfor %}
            {%- endfor %}
            {%- for column in market_columns %}
            {%- set outer_loop = loop %}
            {%- for block, _ in feature_blocks() %}
            market_blocks.{{ block_column(column, block) }}{{ "," if not (outer_loop.last and loop.last) }}
            {%- endfor %}
            {%- endfor %}
        ]::double[] as feature_vector
    from triggers
    inner join level_blocks
        on
            triggers.symbol = level_blocks.symbol
            and triggers.dt = level_blocks.dt
            and triggers.level_id = level_blocks.level_id
            and triggers.window_start = level_blocks.window_start
    inner join market_blocks
        on
            triggers.symbol = market_blocks.symbol
            and triggers.dt = market_blocks.dt
            and triggers.window_start = market_blocks.window_start
)

select
    trigger_id,
    episode_id,
    symbol,
    dt,
    ts,
    window_start,
    trigger_second,
    zone_entry_ts,
    level_id,
    level_price,
    approach_dir,
    distance_ticks,
    minutes_since_open,
    window_valid,
    feature_vector,
    cast(len(feature_vector) - list_count(feature_vector) as integer) as unknown_features
from final
