{{ config(materialized='day_partitioned') }}

{%- set seconds = var('feature_window_seconds') -%}
{%- set tick = var('futures_tick_size') -%}
-- Approach episodes, second by second: an episode starts when spot comes within
-- `level_zone_ticks` of a known level from outside (UP from below, DOWN from above) and lasts
-- while spot stays in the zone; its trigger is the first second spot is within
-- `trigger_ticks` of the level (or beyond it). Leaving the zone re-arms the level. A level that
-- becomes known with spot already in its zone is armed only once spot has left the zone. Real
-- and placebo levels alike (a placebo's episode ids end in `-placebo`).
with seconds as (
    select
        symbol,
        dt,
        second_start,
        spot_price,
        window_end as feature_window_end
    from {{ ref('research_seconds') }}
    where spot_price is not null and {{ in_build_days() }}
),

distances as (
    -- the level as known at the end of the feature window holding the second, as the
    -- trigger's vector sees it
    select
        seconds.symbol,
        seconds.dt,
        seconds.second_start,
        levels.level_id,
        levels.level_kind,
        levels.level_price,
        (seconds.spot_price - levels.level_price) / {{ tick }} as distance_ticks
    from seconds
    inner join {{ ref('session_levels') }} as levels
        on
            seconds.symbol = levels.symbol
            and seconds.dt = levels.dt
            and seconds.feature_window_end >= levels.valid_from
            and seconds.feature_window_end < levels.valid_to
            and {{ in_build_days('levels.dt') }}
),

zone_states as (
    select
        *,
        abs(distance_ticks) <= {{ var('level_zone_ticks') }} as in_zone,
        lag(distance_ticks) over level_history as previous_distance_ticks,
        lag(second_start) over level_history as previous_second
    from distances
    window level_history as (partition by symbol, dt, level_id, level_kind order by second_start)
),

runs as (
    -- consecutive seconds with the same zone state form a run
    select
        *,
        sum(
            case
                when
                    previous_second = second_start - interval 1 second
                    and (abs(previous_distance_ticks) <= {{ var('level_zone_ticks') }}) = in_zone
                    then 0
                else 1
            end
        ) over (partition by symbol, dt, level_id, level_kind order by second_start) as run_number
    from zone_states
),

zone_visits as (
    select
        symbol,
        dt,
        level_id,
        level_kind,
        run_number,
        min(second_start) as zone_entry_ts,
        max(second_start) + interval 1 second as zone_exit_ts,
        arg_min(previous_distance_ticks, second_start) as outside_distance_ticks,
        arg_min(previous_second, second_start) as outside_second,
        arg_min(level_price, second_start) as entry_level_price
    from runs
    where in_zone
    group by symbol, dt, level_id, level_kind, run_number
),

episodes as (
    -- a visit entered from outside the zone in the previous second
    select
        *,
        case when outside_distance_ticks < 0 then 'UP' else 'DOWN' end as approach_dir
    from zone_visits
    where outside_second = zone_entry_ts - interval 1 second
),

first_touches as (
    select
        episodes.symbol,
        episodes.dt,
        episodes.level_id,
        episodes.level_kind,
        episodes.run_number,
        min(runs.second_start) as trigger_second,
        arg_min(runs.level_price, runs.second_start) as trigger_level_price
    from episodes
    inner join runs
        on
            episodes.symbol = runs.symbol
            and episodes.dt = runs.dt
            and episodes.level_id = runs.level_id
            and episodes.level_kind = runs.level_kind
            and episodes.run_number = runs.run_number
    where
        (episodes.approach_dir = 'UP' and runs.distance_ticks >= -{{ var('trigger_ticks') }})
        or (episodes.approach_dir = 'DOWN' and runs.distance_ticks <= {{ var('trigger_ticks') }})
    group by all
),

final as (
    select
        episodes.symbol,
        episodes.dt,
        episodes.level_id,
        episodes.level_kind,
        episodes.approach_dir,
        episodes.entry_level_price,
        episodes.zone_entry_ts,
        episodes.zone_exit_ts,
        first_touches.trigger_second,
        first_touches.trigger_level_price,
        first_touches.trigger_second is not null as is_triggered,
        episodes.symbol || '-' || strftime(episodes.zone_entry_ts, '%Y%m%dT%H%M%S') || '-'
        || episodes.level_id
        || case episodes.level_kind when 'placebo' then '-placebo' else '' end as episode_id
    from episodes
    left join first_touches
        on
            episodes.symbol = first_touches.symbol
            and episodes.dt = first_touches.dt
            and episodes.level_id = first_touches.level_id
            and episodes.level_kind = first_touches.level_kind
            and episodes.run_number = first_touches.run_number
)

select
    episode_id,
    symbol,
    dt,
    level_id,
    level_kind,
    approach_dir,
    entry_level_price,
    zone_entry_ts,
    zone_exit_ts,
    is_triggered,
    trigger_second,
    trigger_level_price
from final
