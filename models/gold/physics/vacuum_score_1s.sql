{{ config(materialized='view') }}

-- Calibrated (0 to 1) physics of each price and second; NULL for a session without history.
with vacuum as (
    select
        symbol,
        dt,
        window_start,
        side,
        price,
        rel_ticks,
        {{ calibrated_physics_metrics() | join(",\n        ") }},
        window_valid
    from {{ ref('vacuum_surface_1s') }}
),

calibration as (
    select
        dt,
        {%- for metric in calibrated_physics_metrics() %}
        max(q05) filter (where metric_name = '{{ metric }}') as {{ metric }}_q05,
        max(q95) filter (where metric_name = '{{ metric }}') as {{ metric }}_q95
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ ref('physics_norm_calibration') }}
    group by dt
),

normalised as (
    select
        vacuum.symbol,
        vacuum.dt,
        vacuum.window_start,
        vacuum.side,
        vacuum.price,
        vacuum.rel_ticks,
        vacuum.window_valid,
        {%- for metric in calibrated_physics_metrics() %}
        {{ min_max_normalised(
            'vacuum.' ~ metric,
            'calibration.' ~ metric ~ '_q05',
            'calibration.' ~ metric ~ '_q95'
        ) }} as {{ metric }}_norm
        {{- "," if not loop.last }}
        {%- endfor %}
    from vacuum
    left join calibration on vacuum.dt = calibration.dt
),

final as (
    select
        *,
        (
            pull_add_log_norm
            + pull_intensity_rest_log1p_norm
            + erosion_ratio_log1p_norm
            + pull_add_log_d2_norm
        ) / 4.0 as vacuum_score
    from normalised
)

select
    symbol,
    dt,
    window_start,
    side,
    price,
    rel_ticks,
    pull_add_log_norm,
    pull_intensity_rest_log1p_norm,
    erosion_ratio_log1p_norm,
    pull_add_log_d2_norm,
    wall_strength_log_norm,
    vacuum_score,
    window_valid
from final
