{{ config(materialized='day_partitioned') }}

{%- set tick = var('futures_tick_size') -%}
{%- set zone = var('level_zone_ticks') -%}
{%- set before = var('composite_seconds_before') -%}
{%- set after = var('composite_seconds_after') -%}
{%- set baseline = var('composite_baseline_seconds') -%}
-- trigger_composite's sums of one session: per level kind, outcome, second from the trigger,
-- ticks from the level and side that hold a price, the exact sums over the session's
-- triggers of the depth share and the pull/add log. Built day by day; trigger_composite pools
-- the sessions.
with triggers as (
    select
        *,
        case when from_below then 1 else -1 end as direction
    from ({{ labelled_triggers(build_days=true) }})
),

trigger_seconds as (
    {{ trigger_seconds('triggers', before, after) }}
),

cells as (
    -- each trigger's prices within the zone of the level, second by second, mirrored
    select
        trigger_seconds.trigger_id,
        trigger_seconds.dt,
        trigger_seconds.level_kind,
        trigger_seconds.outcome,
        trigger_seconds.second_offset,
        cast(round(
            trigger_seconds.direction * (flow.price - trigger_seconds.level_price) / {{ tick }}
        ) as integer) as ticks_from_level,
        case
            when trigger_seconds.direction = 1 then flow.side
            when flow.side = 'ask' then 'bid'
            else 'ask'
        end as side,
        flow.depth_qty_end,
        ln((flow.pull_qty_rest + 1) / (flow.add_qty + 1)) as pull_add_log_rest
    from trigger_seconds
    -- the book is read for the triggers' dates through the join on dt (DuckDB prunes its
    -- files at run time): a date filter on it makes DuckDB build the hash table on the
    -- book and probe it with a day's few triggers on one thread
    inner join {{ ref('depth_and_flow_1s') }} as flow
        on
            trigger_seconds.symbol = flow.symbol
            and trigger_seconds.dt = flow.dt
            and trigger_seconds.window_start = flow.window_start
    where
        flow.price >= trigger_seconds.level_price - {{ zone * tick }}
        and flow.price <= trigger_seconds.level_price + {{ zone * tick }}
),

baselines as (
    -- the trigger's zone depth, both sides, mean over its baseline seconds
    select
        trigger_id,
        sum(depth_qty_end) / {{ baseline }} as baseline_depth
    from cells
    where second_offset < -{{ before }} + {{ baseline }}
    group by trigger_id
),

scaled as (
    select
        cells.*,
        cells.depth_qty_end / (coalesce(baselines.baseline_depth, 0) + 1) as depth_share
    from cells
    left join baselines
        on cells.trigger_id = baselines.trigger_id
),

cell_sums as (
    select
        level_kind,
        outcome,
        dt,
        second_offset,
        ticks_from_level,
        side,
        {{ exact_sum('depth_share') }} as depth_share_sum,
        {{ exact_sum('pull_add_log_rest') }} as pull_add_log_rest_sum
    from scaled
    group by all
)

select
    level_kind,
    outcome,
    dt,
    cast(second_offset as integer) as second_offset,
    cast(ticks_from_level as integer) as ticks_from_level,
    side,
    depth_share_sum,
    pull_add_log_rest_sum
from cell_sums
order by dt, level_kind, outcome, second_offset, side, ticks_from_level
