{%- set zone = var('level_zone_ticks') -%}
{%- set before = var('event_study_seconds_before') -%}
{%- set after = var('event_study_seconds_after') -%}
-- What each side of the level did, second by second, around a trigger: per level kind,
-- outcome, second from `ts`, side and bucket (physics_bands, and the whole zone), the mean over
-- the triggers of the bucket's depth, pull/add log, reprice-away share, add, pull and fill
-- intensity, and (zone) the depth's centre-of-mass distance from the level. Sides are the
-- level's: asks at or above it, bids at or below it, mirrored so that every approach reads as
-- one from below (for an approach from above, `ask` is the bids below the level, the side
-- price meets). Intervals (95%) are clustered by session (clustered_outcome_means). Seconds
-- after the trigger are descriptive: nothing reads them back. Each session's sums are
-- event_study_session_sums' (built day by day); this pools them.
with triggers as (
    {{ labelled_triggers() }}
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
    -- every second, side and bucket of every session with triggers: a trigger whose bucket
    -- holds no price that second counts as an empty, quiet bucket (0 depth and flow, a
    -- reprice-away share of 0.5, no centre of mass)
    select
        sessions.level_kind,
        sessions.outcome,
        sessions.dt,
        second_steps.second_offset,
        sides.side,
        buckets.bucket,
        sessions.triggers,
        {%- for value in event_study_measures() if value != 'com_distance_ticks' %}
        sessions.triggers as {{ value }}_count,
        {%- endfor %}
        coalesce(sums.com_distance_ticks_count, 0) as com_distance_ticks_count,
        {%- for value in event_study_measures() if value != 'reprice_away_share' %}
        coalesce(sums.{{ value }}_sum, 0) as {{ value }}_sum,
        {%- endfor %}
        coalesce(sums.reprice_away_share_sum, 0) + 0.5 * (sessions.triggers - coalesce(sums.held, 0))
            as reprice_away_share_sum
    from session_triggers as sessions
    cross join range(-{{ before }}, {{ after }}) as second_steps (second_offset)
    cross join (values ('ask'), ('bid')) as sides (side)
    cross join buckets
    left join {{ ref('event_study_session_sums') }} as sums
        on
            sessions.level_kind = sums.level_kind
            and sessions.outcome = sums.outcome
            and sessions.dt = sums.dt
            and second_steps.second_offset = sums.second_offset
            and sides.side = sums.side
            and buckets.bucket = sums.bucket
),

final as (
    {{ clustered_outcome_means('session_sums', ['second_offset', 'side', 'bucket'], event_study_measures()) }}
)

select
    level_kind,
    outcome,
    cast(second_offset as integer) as second_offset,
    side,
    bucket,
    triggers,
    sessions,
    {%- for value in event_study_measures() %}
    {{ value }},
    {{ value }}_ci_low,
    {{ value }}_ci_high{{ "," if not loop.last }}
    {%- endfor %}
from final
order by level_kind, outcome, side, bucket, second_offset
