{{ config(materialized='day_partitioned') }}

{%- set tick = var('futures_tick_size') -%}
{%- set zone = var('level_zone_ticks') -%}
{%- set windows = var('condition_window_seconds') -%}
{%- set primary = var('condition_primary_window_seconds') -%}
{%- set measures = [
    ('c1', 'beyond', 'com_displacement_log'), ('c1', 'beyond', 'reprice_away_share'),
    ('c2', 'beyond', 'pull_add_log_rest'),
    ('c3', 'behind', 'com_displacement_log'), ('c3', 'behind', 'reprice_away_share'),
    ('c4', 'behind', 'pull_add_log_rest'),
] -%}
-- The four conditions of the hypothesis before each trigger (real and placebo levels), from
-- the book in the level's zone in the E seconds before `ts` (E in `condition_window_seconds`):
-- the side beyond the level in the direction of approach (asks for UP, bids for DOWN) for C1
-- and C2, the side behind it for C3 and C4. C1/C3: the side's depth moves away from the level
-- (its depth-weighted mean distance grows) and more of it is repriced away than toward; C2/C4:
-- its resting orders are pulled faster than orders are added. Only seconds before `ts`.
with triggers as (
    select
        trigger_id,
        symbol,
        dt,
        ts,
        level_id,
        level_kind,
        level_price,
        approach_dir
    from {{ ref('approach_triggers') }}
    where {{ in_build_days() }}
),

windows as (
    select window_lengths.seconds
    from (values {% for seconds in windows %}({{ seconds }}){{ ", " if not loop.last }}{% endfor %}) as window_lengths (seconds)
),

zone_seconds as (
    -- each zone price's second before the trigger, on its side of the level
    select
        triggers.trigger_id,
        flow.side,
        flow.price,
        flow.window_start,
        date_diff('second', flow.window_start, triggers.ts) as seconds_before,
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
        flow.reprice_out_away_qty,
        flow.reprice_out_toward_qty,
        flow.window_valid
    from triggers
    -- the book is read for the triggers' dates through the join on dt (DuckDB prunes its
    -- files at run time): a date filter on it makes DuckDB build the hash table on the
    -- book and probe it with a day's few triggers on one thread
    inner join {{ ref('depth_and_flow_1s') }} as flow
        on
            triggers.symbol = flow.symbol
            and triggers.dt = flow.dt
            and triggers.ts - interval {{ windows | max }} second <= flow.window_start
            and triggers.ts > flow.window_start
            and (
                (
                    flow.side = 'ask'
                    and triggers.level_price <= flow.price
                    and triggers.level_price + {{ zone * tick }} >= flow.price
                )
                or (
                    flow.side = 'bid'
                    and triggers.level_price >= flow.price
                    and triggers.level_price - {{ zone * tick }} <= flow.price
                )
            )
),

zone_prices as (
    -- each price's depth at the window's start and end and its flow in the window
    select
        zone_seconds.trigger_id,
        windows.seconds as window_seconds,
        zone_seconds.side,
        zone_seconds.price,
        any_value(zone_seconds.ticks_from_level) as ticks_from_level,
        arg_min(zone_seconds.depth_qty_start, zone_seconds.window_start) as depth_start,
        arg_max(zone_seconds.depth_qty_end, zone_seconds.window_start) as depth_end,
        sum(zone_seconds.add_qty) as add_qty,
        sum(zone_seconds.pull_qty_rest) as pull_qty_rest,
        sum(zone_seconds.reprice_out_away_qty) as reprice_away_qty,
        sum(zone_seconds.reprice_out_toward_qty) as reprice_toward_qty,
        bool_and(zone_seconds.window_valid) as window_valid
    from zone_seconds
    inner join windows
        on zone_seconds.seconds_before <= windows.seconds
    group by all
),

zone_sides as (
    select
        trigger_id,
        window_seconds,
        side,
        coalesce(
            sum(depth_start * ticks_from_level) / nullif(sum(depth_start), 0), 0
        ) as mean_ticks_start,
        coalesce(sum(depth_end * ticks_from_level) / nullif(sum(depth_end), 0), 0) as mean_ticks_end,
        sum(add_qty) as add_qty,
        sum(pull_qty_rest) as pull_qty_rest,
        sum(reprice_away_qty) as reprice_away_qty,
        sum(reprice_toward_qty) as reprice_toward_qty,
        bool_and(window_valid) as window_valid
    from zone_prices
    group by all
),

side_measures as (
    -- each trigger, window and side (a quiet empty side: no change)
    select
        triggers.trigger_id,
        windows.seconds as window_seconds,
        sides.side,
        case
            when (triggers.approach_dir = 'UP') = (sides.side = 'ask') then 'beyond' else 'behind'
        end as placement,
        ln((coalesce(zone_sides.mean_ticks_end, 0) + 1) / (coalesce(zone_sides.mean_ticks_start, 0) + 1))
            as com_displacement_log,
        case
            when coalesce(zone_sides.reprice_away_qty + zone_sides.reprice_toward_qty, 0) = 0 then 0.5
            else zone_sides.reprice_away_qty
                / (zone_sides.reprice_away_qty + zone_sides.reprice_toward_qty + 1)
        end as reprice_away_share,
        coalesce(zone_sides.reprice_away_qty > zone_sides.reprice_toward_qty, false)
            as repriced_more_away,
        ln((coalesce(zone_sides.pull_qty_rest, 0) + 1) / (coalesce(zone_sides.add_qty, 0) + 1))
            as pull_add_log_rest,
        coalesce(zone_sides.window_valid, true) as window_valid
    from triggers
    cross join windows
    cross join (values ('ask'), ('bid')) as sides (side)
    left join zone_sides
        on
            triggers.trigger_id = zone_sides.trigger_id
            and windows.seconds = zone_sides.window_seconds
            and sides.side = zone_sides.side
),

conditions as (
    select
        trigger_id,
        window_seconds,
        bool_and(window_valid) as window_valid,
        {%- for condition, role, measure in measures %}
        any_value({{ measure }}) filter (where placement = '{{ role }}') as {{ condition }}_{{ measure }},
        {%- endfor %}
        bool_or(
            placement = 'beyond'
            and com_displacement_log > {{ var('condition_com_displacement_log_min') }}
            and repriced_more_away
        ) as c1,
        bool_or(placement = 'beyond' and pull_add_log_rest > {{ var('condition_pull_add_log_min') }}) as c2,
        bool_or(
            placement = 'behind'
            and com_displacement_log > {{ var('condition_com_displacement_log_min') }}
            and repriced_more_away
        ) as c3,
        bool_or(placement = 'behind' and pull_add_log_rest > {{ var('condition_pull_add_log_min') }}) as c4
    from side_measures
    group by trigger_id, window_seconds
)

select
    triggers.trigger_id,
    triggers.symbol,
    triggers.dt,
    triggers.ts,
    triggers.level_id,
    triggers.level_kind,
    triggers.approach_dir,
    {%- for seconds in windows %}
    {%- set w = 'w' ~ seconds %}
    {{ w }}.window_valid as window_valid_{{ seconds }}s,
    {%- for condition, role, measure in measures %}
    {{ w }}.{{ condition }}_{{ measure }} as {{ condition }}_{{ measure }}_{{ seconds }}s,
    {%- endfor %}
    {%- for condition in ['c1', 'c2', 'c3', 'c4'] %}
    {{ w }}.{{ condition }} as {{ condition }}_{{ seconds }}s,
    {%- endfor %}
    concat({% for condition in ['c1', 'c2', 'c3', 'c4'] %}{{ w }}.{{ condition }}::integer{{ ", " if not loop.last }}{% endfor %})
        as pattern_{{ seconds }}s,
    {%- endfor %}
    concat({% for condition in ['c1', 'c2', 'c3', 'c4'] %}w{{ primary }}.{{ condition }}::integer{{ ", " if not loop.last }}{% endfor %})
        as pattern
from triggers
{%- for seconds in windows %}
inner join conditions as w{{ seconds }}
    on triggers.trigger_id = w{{ seconds }}.trigger_id and w{{ seconds }}.window_seconds = {{ seconds }}
{%- endfor %}
