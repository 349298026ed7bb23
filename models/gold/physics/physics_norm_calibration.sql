-- q05 and q95 of each calibrated metric for each session, from the K sessions before it only.
with included_sessions as (
    select
        dt,
        row_number() over (order by dt) as session_number
    from {{ ref('contract_day_selection') }}
    where is_included
),

session_pairs as (
    -- each session with each of the (up to) K included sessions before it, never itself
    select
        calibrated.dt,
        history.dt as history_dt
    from included_sessions as calibrated
    inner join included_sessions as history
        on
            calibrated.session_number > history.session_number
            and calibrated.session_number - {{ var('calibration_sessions') }}
            <= history.session_number
),

session_calendar as (
    select
        dt,
        session_window_start,
        session_window_end
    from {{ ref('session_calendar') }}
),

vacuum as (
    -- the research window of valid seconds: what the scores are used on
    select
        vacuum_surface.dt,
        {%- for metric in calibrated_physics_metrics() %}
        vacuum_surface.{{ metric }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('vacuum_surface_1s') }} as vacuum_surface
    inner join session_calendar
        on
            vacuum_surface.dt = session_calendar.dt
            and vacuum_surface.window_start >= session_calendar.session_window_start
            and vacuum_surface.window_start < session_calendar.session_window_end
    where vacuum_surface.window_valid
),

observations as (
    {%- for metric in calibrated_physics_metrics() %}
    select
        dt,
        '{{ metric }}' as metric_name,
        {{ metric }} as metric_value
    from vacuum
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
),

final as (
    select
        session_pairs.dt,
        observations.metric_name,
        quantile_cont(observations.metric_value, 0.05) as q05,
        quantile_cont(observations.metric_value, 0.95) as q95,
        count(distinct session_pairs.history_dt) as sessions_used
    from session_pairs
    inner join observations on session_pairs.history_dt = observations.dt
    group by session_pairs.dt, observations.metric_name
)

select
    dt,
    metric_name,
    cast(q05 as double) as q05,
    cast(q95 as double) as q95,
    cast(sessions_used as integer) as sessions_used
from final
