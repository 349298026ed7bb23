{{ config(materialized='day_partitioned', history_sessions=var('calibration_sessions')) }}

-- q05 and q95 of each calibrated metric for each session, from the K sessions before it only.
-- The metrics take few distinct values (logs of ratios of integer quantities), so each session
-- is reduced to counts of its values and each calibration pools its K sessions' counts: linear
-- in K where pooling the K sessions' rows was quadratic. Each percentile is at position
-- (n - 1) q of the pooled values, lo + (hi - lo) d between the values at its floor and ceil
-- ranks: quantile_cont's positions, with a blend in plain SQL arithmetic (DuckDB's own blend
-- is a fused multiply-add, which SQL cannot write).
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
    where vacuum_surface.window_valid and {{ in_build_days('vacuum_surface.dt', history=true) }}
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

session_value_counts as (
    -- NULL values are kept as a group: they count the session as used, never as a value
    select
        dt,
        metric_name,
        metric_value,
        count(*) as occurrences
    from observations
    group by dt, metric_name, metric_value
),

pooled_value_counts as (
    select
        session_pairs.dt,
        session_value_counts.metric_name,
        session_value_counts.metric_value,
        sum(session_value_counts.occurrences) as occurrences
    from session_pairs
    inner join session_value_counts on session_pairs.history_dt = session_value_counts.dt
    group by session_pairs.dt, session_value_counts.metric_name, session_value_counts.metric_value
),

sessions_used as (
    select
        session_pairs.dt,
        session_value_counts.metric_name,
        count(distinct session_pairs.history_dt) as sessions_used
    from session_pairs
    inner join session_value_counts on session_pairs.history_dt = session_value_counts.dt
    group by session_pairs.dt, session_value_counts.metric_name
),

ranked_values as (
    -- each distinct value holds the 0-based ranks [first_rank, first_rank + occurrences)
    select
        dt,
        metric_name,
        metric_value,
        sum(occurrences) over ranks - occurrences as first_rank,
        sum(occurrences) over values_of_metric as value_count
    from pooled_value_counts
    where metric_value is not null
    window
        ranks as (
            partition by dt, metric_name order by metric_value
            rows between unbounded preceding and current row
        ),
        values_of_metric as (partition by dt, metric_name)
),

pooled_sizes as (
    select distinct
        dt,
        metric_name,
        value_count
    from ranked_values
),

percentile_positions as (
    -- quantile_cont's position (n - 1) q
    select
        pooled_sizes.dt,
        pooled_sizes.metric_name,
        percentile_levels.percentile_name,
        cast(pooled_sizes.value_count - 1 as double) * percentile_levels.percentile_level
        as rank_position
    from pooled_sizes
    cross join
        (values ('q05', cast(0.05 as double)), ('q95', cast(0.95 as double)))
        as percentile_levels (percentile_name, percentile_level)
),

percentile_ranks as (
    -- the ranks below and above the position
    select
        dt,
        metric_name,
        percentile_name,
        rank_position,
        cast(floor(rank_position) as bigint) as lower_rank,
        cast(ceil(rank_position) as bigint) as upper_rank
    from percentile_positions
),

percentiles as (
    select
        percentile_ranks.dt,
        percentile_ranks.metric_name,
        percentile_ranks.percentile_name,
        case
            when percentile_ranks.lower_rank = percentile_ranks.upper_rank then lower_value.metric_value
            else
                lower_value.metric_value
                + (upper_value.metric_value - lower_value.metric_value)
                * (percentile_ranks.rank_position - percentile_ranks.lower_rank)
        end as percentile_value
    from percentile_ranks
    asof inner join ranked_values as lower_value
        on
            percentile_ranks.dt = lower_value.dt
            and percentile_ranks.metric_name = lower_value.metric_name
            and percentile_ranks.lower_rank >= lower_value.first_rank
    asof inner join ranked_values as upper_value
        on
            percentile_ranks.dt = upper_value.dt
            and percentile_ranks.metric_name = upper_value.metric_name
            and percentile_ranks.upper_rank >= upper_value.first_rank
),

final as (
    select
        sessions_used.dt,
        sessions_used.metric_name,
        q05.percentile_value as q05,
        q95.percentile_value as q95,
        sessions_used.sessions_used
    from sessions_used
    left join percentiles as q05
        on
            sessions_used.dt = q05.dt
            and sessions_used.metric_name = q05.metric_name
            and q05.percentile_name = 'q05'
    left join percentiles as q95
        on
            sessions_used.dt = q95.dt
            and sessions_used.metric_name = q95.metric_name
            and q95.percentile_name = 'q95'
)

select
    dt,
    metric_name,
    cast(q05 as double) as q05,
    cast(q95 as double) as q95,
    cast(sessions_used as integer) as sessions_used
from final
