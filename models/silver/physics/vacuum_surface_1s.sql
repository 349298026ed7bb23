{{ config(materialized='day_partitioned') }}

-- Per second, side and price within `physics_max_ticks` of spot: how liquidity is leaving.
-- Rows are stored in time order so a window of seconds reads only its own row groups.
with depth_and_flow as (
    select
        symbol,
        dt,
        window_start,
        side,
        price,
        rel_ticks,
        depth_qty_start,
        depth_qty_end,
        depth_qty_rest,
        add_qty,
        pull_qty_rest,
        fill_qty,
        window_valid
    from {{ ref('depth_and_flow_1s') }}
    where {{ in_build_days() }}
),

metrics as (
    select
        symbol,
        dt,
        window_start,
        side,
        price,
        rel_ticks,
        depth_qty_start,
        window_valid,
        cast(greatest(depth_qty_start - depth_qty_end, 0) as double) as wall_erosion,
        fill_qty / (depth_qty_start + 1.0) as fill_intensity,
        pull_qty_rest / (depth_qty_start + 1.0) as pull_intensity_rest,
        ln((pull_qty_rest + 1.0) / (add_qty + 1.0)) as pull_add_log,
        ln(depth_qty_rest + 1.0) as wall_strength_log
    from depth_and_flow
),

{{ derivative_ctes(
    'metrics',
    ['pull_intensity_rest', 'pull_add_log', 'wall_strength_log', 'wall_erosion'],
    ['symbol', 'dt', 'side', 'price'],
    'metric'
) }},

final as (
    select
        *,
        ln(1.0 + pull_intensity_rest) as pull_intensity_rest_log1p,
        ln(1.0 + wall_erosion / (depth_qty_start + 1.0)) as erosion_ratio_log1p
    from metric_d3
    where abs(rel_ticks) <= {{ var('physics_max_ticks') }}
)

select
    symbol,
    dt,
    window_start,
    side,
    price,
    rel_ticks,
    pull_intensity_rest,
    pull_intensity_rest_d1,
    pull_intensity_rest_d2,
    pull_intensity_rest_d3,
    pull_add_log,
    pull_add_log_d1,
    pull_add_log_d2,
    pull_add_log_d3,
    wall_strength_log,
    wall_strength_log_d1,
    wall_strength_log_d2,
    wall_strength_log_d3,
    wall_erosion,
    wall_erosion_d1,
    wall_erosion_d2,
    wall_erosion_d3,
    pull_intensity_rest_log1p,
    erosion_ratio_log1p,
    fill_intensity,
    window_valid
from final
order by symbol, dt, window_start, side, price
