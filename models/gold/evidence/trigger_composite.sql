{%- set zone = var('level_zone_ticks') -%}
{%- set before = var('composite_seconds_before') -%}
{%- set after = var('composite_seconds_after') -%}
-- The typical book around a trigger: per level kind, outcome, second from the trigger and
-- ticks from the level, the mean over the triggers of each price's resting quantity (as a
-- share of the trigger's own zone depth in the `composite_baseline_seconds` seconds before
-- `ts` - before_seconds) and its pull/add log, mirrored so that every approach reads as one
-- from below (an approach from above swaps asks and bids and the sign of the ticks). Beside
-- BREAK, REJECT, CHOP and WHIPSAW, the difference REJECT minus BREAK. Intervals (95%) are
-- clustered by session (clustered_outcome_means). Seconds after the trigger are descriptive:
-- nothing reads them back. Each session's sums are composite_session_sums' (built day by
-- day); this pools them.
with triggers as (
    {{ labelled_triggers() }}
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
    left join {{ ref('composite_session_sums') }} as cell_sums
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
