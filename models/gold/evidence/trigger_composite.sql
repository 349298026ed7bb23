{%- set tick = var('futures_tick_size') -%}
{%- set zone = var('level_zone_ticks') -%}
{%- set before = var('composite_seconds_before') -%}
{%- set after = var('composite_seconds_after') -%}
{%- set baseline = var('composite_baseline_seconds') -%}
-- The typical book around a trigger: per level kind, outcome, second from the trigger and
-- ticks from the level, the mean over the triggers of each price's resting quantity (as a
-- share of the trigger's own zone depth in the `composite_baseline_seconds` seconds before
-- `ts` - before_seconds) and its pull/add log, mirrored so that every approach reads as one
-- from below (an approach from above swaps asks and bids and the sign of the ticks). Beside
-- BREAK, REJECT, CHOP and WHIPSAW, the difference REJECT minus BREAK. Intervals (95%) are
-- clustered by session (clustered_outcome_means). Seconds after the trigger are descriptive:
-- nothing reads them back.
with triggers as (
    select
        *,
        case when from_below then 1 else -1 end as direction
    from ({{ labelled_triggers() }})
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

session_triggers as (
    select
        level_kind,
        outcome,
        dt,
        count(*) as triggers
    from triggers
    group by all
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
),

session_sums as (
    -- every cell of every session with triggers: a price without depth or flow that second
    -- counts as 0 for each trigger
    select
        sessions.level_kind,
        sessions.outcome,
        sessions.dt,
        second_steps.second_offset,
        tick_steps.ticks_from_level,
        sides.side,
        sessions.triggers,
        sessions.triggers as depth_share_count,
        sessions.triggers as pull_add_log_rest_count,
        coalesce(cell_sums.depth_share_sum, 0) as depth_share_sum,
        coalesce(cell_sums.pull_add_log_rest_sum, 0) as pull_add_log_rest_sum
    from session_triggers as sessions
    cross join range(-{{ before }}, {{ after }}) as second_steps (second_offset)
    cross join range(-{{ zone }}, {{ zone + 1 }}) as tick_steps (ticks_from_level)
    cross join (values ('ask'), ('bid')) as sides (side)
    left join cell_sums
        on
            sessions.level_kind = cell_sums.level_kind
            and sessions.outcome = cell_sums.outcome
            and sessions.dt = cell_sums.dt
            and second_steps.second_offset = cell_sums.second_offset
            and tick_steps.ticks_from_level = cell_sums.ticks_from_level
            and sides.side = cell_sums.side
),

final as (
    {{ clustered_outcome_means(
        'session_sums',
        ['second_offset', 'ticks_from_level', 'side'],
        ['depth_share', 'pull_add_log_rest']
    ) }}
)

select
    level_kind,
    outcome,
    cast(second_offset as integer) as second_offset,
    cast(ticks_from_level as integer) as ticks_from_level,
    side,
    triggers,
    sessions,
    depth_share,
    depth_share_ci_low,
    depth_share_ci_high,
    pull_add_log_rest,
    pull_add_log_rest_ci_low,
    pull_add_log_rest_ci_high
from final
order by level_kind, outcome, second_offset, side, ticks_from_level
