{{ config(materialized='day_partitioned') }}

{%- set seconds = var('feature_window_seconds') -%}
-- One row per triggered approach episode, at real and placebo levels: the trigger's time is
-- the end of the feature window holding its trigger second (what its vector sees at real
-- levels). A placebo trigger's id ends in `-placebo`.
with triggers as (
    select
        episode_id,
        symbol,
        dt,
        level_id,
        level_kind,
        approach_dir,
        zone_entry_ts,
        trigger_second,
        trigger_level_price,
        {{ window_floor('trigger_second', seconds) }} as window_start
    from {{ ref('approach_episodes') }}
    where is_triggered and {{ in_build_days() }}
),

session_open as (
    select
        dt,
        session_window_start
    from {{ ref('session_calendar') }}
    where {{ in_build_days() }}
)

select
    triggers.symbol || '-' || strftime(triggers.window_start + interval {{ seconds }} second, '%Y%m%dT%H%M%S')
    || '-' || triggers.level_id
    || case triggers.level_kind when 'placebo' then '-placebo' else '' end as trigger_id,
    triggers.episode_id,
    triggers.symbol,
    triggers.dt,
    triggers.window_start + interval {{ seconds }} second as ts,
    triggers.window_start,
    triggers.trigger_second,
    triggers.zone_entry_ts,
    triggers.level_id,
    triggers.level_kind,
    triggers.trigger_level_price as level_price,
    triggers.approach_dir,
    date_diff('second', session_open.session_window_start, triggers.window_start)
    / 60.0 + {{ seconds / 60.0 }} as minutes_since_open
from triggers
inner join session_open
    on triggers.dt = session_open.dt
