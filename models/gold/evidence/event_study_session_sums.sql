{{ config(materialized='day_partitioned') }}

{%- set tick = var('futures_tick_size') -%}
{%- set zone = var('level_zone_ticks') -%}
{%- set before = var('event_study_seconds_before') -%}
{%- set after = var('event_study_seconds_after') -%}
-- trigger_event_study's sums of one session: per level kind, outcome, second from the
-- trigger, side and bucket that holds a price that second, the triggers it holds and the
-- exact sums of their measures. Built day by day; trigger_event_study pools the sessions.
with triggers as (
    {{ labelled_triggers(build_days=true) }}
),

buckets as (
    select
        band as bucket,
        min_ticks,
        max_ticks
    from {{ ref('physics_bands') }}
    union all
    select
        'zone' as bucket,
        0 as min_ticks,
        {{ zone }} as max_ticks
),

zone_prices as (
    -- each trigger's prices in the level's zone, second by second, on the level's sides (a
    -- join on the time range: here faster than trigger_seconds' join on equal seconds, 31 s
    -- against 47 s over 59 tiny sessions, which wins for trigger_composite)
    select
        triggers.trigger_id,
        date_diff('second', triggers.ts, flow.window_start) as second_offset,
        case when triggers.from_below = (flow.side = 'ask') then 'ask' else 'bid' end as side,
        cast(round(
            case flow.side
                when 'ask' then flow.price - triggers.level_price
                else triggers.level_price - flow.price
            end / {{ tick }}
        ) as integer) as ticks_from_level,
        flow.depth_qty_start,
        flow.depth_qty_end,
        flow.add_qty,
        flow.pull_qty_rest,
        flow.fill_qty,
        flow.reprice_out_away_qty,
        flow.reprice_out_toward_qty
    from triggers
    -- the book is read for the triggers' dates through the join on dt (DuckDB prunes its
    -- files at run time): a date filter on it makes DuckDB build the hash table on the
    -- book and probe it with a day's few triggers on one thread
    inner join {{ ref('depth_and_flow_1s') }} as flow
        on
            triggers.symbol = flow.symbol
            and triggers.dt = flow.dt
            and triggers.ts - interval {{ before }} second <= flow.window_start
            and triggers.ts + interval {{ after }} second > flow.window_start
    where
        (
            flow.side = 'ask'
            and flow.price >= triggers.level_price
            and flow.price <= triggers.level_price + {{ zone * tick }}
        )
        or (
            flow.side = 'bid'
            and flow.price <= triggers.level_price
            and flow.price >= triggers.level_price - {{ zone * tick }}
        )
),

bucket_sums as (
    select
        zone_prices.trigger_id,
        zone_prices.second_offset,
        zone_prices.side,
        buckets.bucket,
        sum(zone_prices.depth_qty_start) as depth_start,
        sum(zone_prices.depth_qty_end) as depth_end,
        sum(zone_prices.depth_qty_end * zone_prices.ticks_from_level) as depth_ticks_end,
        sum(zone_prices.add_qty) as add_qty,
        sum(zone_prices.pull_qty_rest) as pull_qty_rest,
        sum(zone_prices.fill_qty) as fill_qty,
        sum(zone_prices.reprice_out_away_qty) as reprice_away_qty,
        sum(zone_prices.reprice_out_toward_qty) as reprice_toward_qty
    from zone_prices
    inner join buckets
        on zone_prices.ticks_from_level between buckets.min_ticks and buckets.max_ticks
    group by all
),

trigger_measures as (
    -- level_features' measures, per second (quantities with an epsilon of 1), of the buckets
    -- that hold a price that second
    select
        sums.trigger_id,
        triggers.dt,
        triggers.level_kind,
        triggers.outcome,
        sums.second_offset,
        sums.side,
        sums.bucket,
        sums.depth_end as depth_qty_end,
        ln((sums.pull_qty_rest + 1) / (sums.add_qty + 1)) as pull_add_log_rest,
        case
            when sums.reprice_away_qty + sums.reprice_toward_qty = 0 then 0.5
            else sums.reprice_away_qty / (sums.reprice_away_qty + sums.reprice_toward_qty + 1)
        end as reprice_away_share,
        sums.add_qty / (sums.depth_start + 1) as add_intensity,
        sums.pull_qty_rest / (sums.depth_start + 1) as pull_intensity_rest,
        sums.fill_qty / (sums.depth_start + 1) as fill_intensity,
        -- only the whole zone has a centre of mass, and only while it holds depth
        case when sums.bucket = 'zone' and sums.depth_end > 0 then sums.depth_ticks_end / sums.depth_end end
            as com_distance_ticks
    from bucket_sums as sums
    inner join triggers
        on sums.trigger_id = triggers.trigger_id
),

held_sums as (
    select
        level_kind,
        outcome,
        dt,
        second_offset,
        side,
        bucket,
        count(*) as held,
        count(com_distance_ticks) as com_distance_ticks_count,
        {%- for value in event_study_measures() %}
        {{ exact_sum(value) }} as {{ value }}_sum
        {{- "," if not loop.last }}
        {%- endfor %}
    from trigger_measures
    group by all
)

select
    level_kind,
    outcome,
    dt,
    cast(second_offset as integer) as second_offset,
    side,
    bucket,
    held,
    com_distance_ticks_count,
    {%- for value in event_study_measures() %}
    {{ value }}_sum{{ "," if not loop.last }}
    {%- endfor %}
from held_sums
order by dt, level_kind, outcome, side, bucket, second_offset
