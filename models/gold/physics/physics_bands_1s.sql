{{ config(materialized='day_partitioned') }}

-- Per second, side (above = asks over spot, below = bids under it) and band of ticks from
-- spot: calibrated wall strength, erosion and vacuum, flow intensities and ease of movement.
with bands as (
    select
        band,
        min_ticks,
        max_ticks,
        band_order
    from {{ ref('physics_bands') }}
),

depth_and_flow as (
    select
        symbol,
        dt,
        window_start,
        side,
        price,
        rel_ticks,
        depth_qty_start,
        depth_qty_end,
        add_qty,
        pull_qty,
        fill_qty,
        window_valid
    from {{ ref('depth_and_flow_1s') }}
    where abs(rel_ticks) <= {{ var('physics_max_ticks') }} and {{ in_build_days() }}
),

scores as (
    select
        symbol,
        dt,
        window_start,
        side,
        price,
        wall_strength_log_norm,
        erosion_ratio_log1p_norm,
        vacuum_score
    from {{ ref('vacuum_score_1s') }}
    where {{ in_build_days() }}
),

priced as (
    select
        depth_and_flow.*,
        scores.wall_strength_log_norm,
        scores.erosion_ratio_log1p_norm,
        scores.vacuum_score,
        case
            when depth_and_flow.side = 'ask' and depth_and_flow.rel_ticks > 0 then 'above'
            when depth_and_flow.side = 'bid' and depth_and_flow.rel_ticks < 0 then 'below'
        end as book_side
    from depth_and_flow
    inner join scores
        on
            depth_and_flow.symbol = scores.symbol
            and depth_and_flow.dt = scores.dt
            and depth_and_flow.window_start = scores.window_start
            and depth_and_flow.side = scores.side
            and depth_and_flow.price = scores.price
),

banded as (
    select
        priced.*,
        bands.band,
        bands.band_order
    from priced
    inner join bands
        on abs(priced.rel_ticks) between bands.min_ticks and bands.max_ticks
    where priced.book_side is not null
),

aggregated as (
    select
        symbol,
        dt,
        window_start,
        book_side as side,
        band,
        band_order,
        count(*) as price_levels,
        sum(depth_qty_end) as depth_qty,
        -- averaged in price order: the same build gives the same bits
        {{ ordered_avgs({
            'wall_strength_norm': 'wall_strength_log_norm',
            'erosion_norm': 'erosion_ratio_log1p_norm',
            'vacuum_score': 'vacuum_score',
        }, 'price') }},
        sum(add_qty) / (sum(depth_qty_start) + 1.0) as add_intensity,
        sum(pull_qty) / (sum(depth_qty_start) + 1.0) as pull_intensity,
        sum(fill_qty) / (sum(depth_qty_start) + 1.0) as fill_intensity,
        bool_and(window_valid) as window_valid
    from banded
    group by symbol, dt, window_start, book_side, band, band_order
),

eased as (
    select
        *,
        add_intensity - pull_intensity - fill_intensity as liquidity_velocity,
        {{ var('ease_weights')['vacuum'] }} * vacuum_score
        + {{ var('ease_weights')['erosion'] }} * erosion_norm
        + {{ var('ease_weights')['strength'] }} * (1.0 - wall_strength_norm) as ease
    from aggregated
),

side_scores as (
    select
        symbol,
        dt,
        window_start,
        side,
        {{ var('side_score_weights')['at'] }} * max(ease) filter (where band = 'at')
        + {{ var('side_score_weights')['near'] }} * max(ease) filter (where band = 'near')
        as side_score
    from eased
    group by symbol, dt, window_start, side
),

final as (
    select
        eased.*,
        side_scores.side_score
    from eased
    inner join side_scores
        on
            eased.symbol = side_scores.symbol
            and eased.dt = side_scores.dt
            and eased.window_start = side_scores.window_start
            and eased.side = side_scores.side
)

select
    symbol,
    dt,
    window_start,
    side,
    band,
    cast(band_order as integer) as band_order,
    cast(price_levels as integer) as price_levels,
    cast(depth_qty as bigint) as depth_qty,
    wall_strength_norm,
    erosion_norm,
    vacuum_score,
    add_intensity,
    pull_intensity,
    fill_intensity,
    liquidity_velocity,
    ease,
    side_score,
    window_valid
from final
-- time order: a window of seconds reads only its own row groups
order by symbol, dt, window_start, side, band_order
