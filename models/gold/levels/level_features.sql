{{ config(materialized='day_partitioned') }}

{%- set seconds = var('feature_window_seconds') -%}
{%- set tick = var('futures_tick_size') -%}
{%- set zone = var('level_zone_ticks') -%}
-- Per `feature_window_seconds` window of the research window and per known level: the physics
-- of the book in the level's zone, asks at or above the level, bids at or below it,
-- bucketed by ticks from the level (physics_bands), plus distance, approach velocity and
-- gamma exposure near the level.
with calendar as (
    select
        dt,
        session_window_start,
        session_window_end
    from {{ ref('session_calendar') }}
    where {{ in_build_days() }}
),

bands as (
    select
        band,
        min_ticks,
        max_ticks
    from {{ ref('physics_bands') }}
),

windows as (
    select
        symbol,
        dt,
        window_start,
        window_end,
        spot_price,
        book_valid
    from {{ ref('feature_windows') }}
    where {{ in_build_days() }}
),

window_levels as (
    -- the value each level has at the window's end
    select
        windows.symbol,
        windows.dt,
        windows.window_start,
        windows.window_end,
        windows.spot_price,
        windows.book_valid,
        levels.level_id,
        levels.level_price
    from windows
    inner join {{ ref('session_levels') }} as levels
        on
            windows.symbol = levels.symbol
            and windows.dt = levels.dt
            and windows.window_end >= levels.valid_from
            and windows.window_end < levels.valid_to
    -- vectors and retrieval are of the levels traders watch (trigger_conditions reads the
    -- book at placebo levels itself)
    where levels.level_kind = 'real' and {{ in_build_days('levels.dt') }}
),

price_windows as (
    -- each price's depth at the window's start and end, and its flow in the window
    select
        flow.symbol,
        flow.dt,
        {{ window_floor('flow.window_start', seconds) }} as window_start,
        flow.side,
        flow.price,
        arg_min(flow.depth_qty_start, flow.window_start) as depth_start,
        arg_max(flow.depth_qty_end, flow.window_start) as depth_end,
        sum(flow.add_qty) as add_qty,
        sum(flow.pull_qty) as pull_qty,
        sum(flow.pull_qty_rest) as pull_qty_rest,
        sum(flow.fill_qty) as fill_qty,
        sum(flow.reprice_out_away_qty) as reprice_away_qty,
        sum(flow.reprice_out_toward_qty) as reprice_toward_qty,
        bool_and(flow.window_valid) as window_valid
    from {{ ref('depth_and_flow_1s') }} as flow
    inner join calendar
        on
            flow.dt = calendar.dt
            and flow.window_start >= calendar.session_window_start
            and flow.window_start < calendar.session_window_end
    where {{ in_build_days('flow.dt') }}
    group by all
),

zone_prices as (
    select
        window_levels.symbol,
        window_levels.dt,
        window_levels.window_start,
        window_levels.level_id,
        price_windows.side,
        price_windows.depth_start,
        price_windows.depth_end,
        price_windows.add_qty,
        price_windows.pull_qty,
        price_windows.pull_qty_rest,
        price_windows.fill_qty,
        price_windows.reprice_away_qty,
        price_windows.reprice_toward_qty,
        price_windows.window_valid,
        cast(round(
            case price_windows.side
                when 'ask' then price_windows.price - window_levels.level_price
                else window_levels.level_price - price_windows.price
            end / {{ tick }}
        ) as integer) as ticks_from_level
    from window_levels
    inner join price_windows
        on
            window_levels.symbol = price_windows.symbol
            and window_levels.dt = price_windows.dt
            and window_levels.window_start = price_windows.window_start
    where
        (
            price_windows.side = 'ask'
            and price_windows.price >= window_levels.level_price
            and price_windows.price <= window_levels.level_price + {{ zone * tick }}
        )
        or (
            price_windows.side = 'bid'
            and price_windows.price <= window_levels.level_price
            and price_windows.price >= window_levels.level_price - {{ zone * tick }}
        )
),

side_totals as (
    select
        zone_prices.symbol,
        zone_prices.dt,
        zone_prices.window_start,
        zone_prices.level_id,
        zone_prices.side,
        sum(zone_prices.depth_start) as zone_start,
        sum(zone_prices.depth_end) as zone_end,
        sum(zone_prices.depth_start * zone_prices.ticks_from_level)
        / nullif(sum(zone_prices.depth_start), 0) as mean_ticks_start,
        sum(zone_prices.depth_end * zone_prices.ticks_from_level)
        / nullif(sum(zone_prices.depth_end), 0) as mean_ticks_end,
        {%- for band in ['at', 'near', 'far'] %}
        coalesce(sum(zone_prices.depth_start) filter (where bands.band = '{{ band }}'), 0)
            as {{ band }}_start,
        coalesce(sum(zone_prices.depth_end) filter (where bands.band = '{{ band }}'), 0)
            as {{ band }}_end,
        coalesce(sum(zone_prices.pull_qty) filter (where bands.band = '{{ band }}'), 0)
            as {{ band }}_pull,
        {%- endfor %}
        sum(zone_prices.pull_qty) as zone_pull,
        sum(zone_prices.pull_qty_rest) as pull_rest,
        sum(zone_prices.add_qty) as zone_add,
        sum(zone_prices.fill_qty) as zone_fill,
        sum(zone_prices.reprice_away_qty) as reprice_away,
        sum(zone_prices.reprice_toward_qty) as reprice_toward,
        bool_and(zone_prices.window_valid) as window_valid
    from zone_prices
    inner join bands
        on zone_prices.ticks_from_level between bands.min_ticks and bands.max_ticks
    group by all
),

level_sides as (
    -- every level and side, zeros where the zone is empty and quiet
    select
        window_levels.symbol,
        window_levels.dt,
        window_levels.window_start,
        window_levels.level_id,
        sides.side,
        coalesce(side_totals.zone_start, 0) as zone_start,
        coalesce(side_totals.zone_end, 0) as zone_end,
        coalesce(side_totals.mean_ticks_start, 0) as mean_ticks_start,
        coalesce(side_totals.mean_ticks_end, 0) as mean_ticks_end,
        {%- for band in ['at', 'near', 'far'] %}
        {%- for part in ['start', 'end', 'pull'] %}
        coalesce(side_totals.{{ band }}_{{ part }}, 0) as {{ band }}_{{ part }},
        {%- endfor %}
        {%- endfor %}
        coalesce(side_totals.zone_pull, 0) as zone_pull,
        coalesce(side_totals.pull_rest, 0) as pull_rest,
        coalesce(side_totals.zone_add, 0) as zone_add,
        coalesce(side_totals.zone_fill, 0) as zone_fill,
        coalesce(side_totals.reprice_away, 0) as reprice_away,
        coalesce(side_totals.reprice_toward, 0) as reprice_toward,
        coalesce(side_totals.window_valid, true) as window_valid
    from window_levels
    cross join (values ('ask'), ('bid')) as sides (side)
    left join side_totals
        on
            window_levels.symbol = side_totals.symbol
            and window_levels.dt = side_totals.dt
            and window_levels.window_start = side_totals.window_start
            and window_levels.level_id = side_totals.level_id
            and sides.side = side_totals.side
),

side_features as (
    select
        symbol,
        dt,
        window_start,
        level_id,
        side,
        window_valid,
        ln((mean_ticks_end + 1) / (mean_ticks_start + 1)) as com_displacement_log,
        ln((near_end + 1) / (at_end + 1)) as inner_slope_log,
        ln((far_end + 1) / (near_end + 1)) as convex_slope_log,
        at_end / (zone_end + 1) - at_start / (zone_start + 1) as at_share_change,
        near_end / (zone_end + 1) - near_start / (zone_start + 1) as near_share_change,
        case
            when reprice_away + reprice_toward = 0 then 0.5
            else reprice_away / (reprice_away + reprice_toward + 1)
        end as reprice_away_share,
        ln((pull_rest + 1) / (zone_add + 1)) as pull_add_log_rest,
        ln(1 + pull_rest / (zone_start + 1)) as pull_intensity_rest_log1p,
        at_pull / (zone_pull + 1) as at_pull_share,
        near_pull / (zone_pull + 1) as near_pull_share,
        zone_add / (zone_start + 1) as add_intensity,
        zone_fill / (zone_start + 1) as fill_intensity
    from level_sides
),

sides_pivoted as (
    select
        symbol,
        dt,
        window_start,
        level_id,
        bool_and(window_valid) as zone_valid,
        {%- for side in ['ask', 'bid'] %}
        {%- set outer_loop = loop %}
        {%- for name, _ in level_side_features() %}
        any_value({{ name }}) filter (where side = '{{ side }}') as {{ side }}_{{ name }}
        {{- "," if not (outer_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from side_features
    group by symbol, dt, window_start, level_id
),

zone_gamma as (
    -- gamma exposure at the window's last second, at strikes within the zone and on the grid
    select
        window_levels.symbol,
        window_levels.dt,
        window_levels.window_start,
        window_levels.level_id,
        {%- set in_zone = 'abs(gex.strike_price - window_levels.level_price) <= ' ~ (zone * tick) %}
        {{ ordered_sum('gex.abs_gex', 'gex.strike_price', in_zone) }} as zone_abs_gex,
        {{ ordered_sum('gex.net_gex', 'gex.strike_price', in_zone) }} as zone_net_gex,
        {{ ordered_sum('gex.abs_gex', 'gex.strike_price') }} as grid_abs_gex,
        -- unknown exposure (no options that second, or a zone strike without a known sum)
        -- makes the features NULL rather than a zero that reads as known
        count(gex.abs_gex) = 0
        or count(*) filter (where {{ in_zone }} and gex.abs_gex is null) > 0 as gex_unknown
    from window_levels
    left join {{ ref('gex_surface_1s') }} as gex
        on
            window_levels.symbol = gex.symbol
            and window_levels.dt = gex.dt
            and gex.window_start = window_levels.window_end - interval 1 second
            and {{ in_build_days('gex.dt') }}
    group by all
),

distances as (
    select
        *,
        (spot_price - level_price) / {{ tick }} as distance_ticks
    from window_levels
),

final as (
    select
        distances.symbol,
        distances.dt,
        distances.window_start,
        distances.window_end,
        distances.level_id,
        distances.level_price,
        distances.spot_price,
        distances.book_valid and sides_pivoted.zone_valid as window_valid,
        distances.distance_ticks,
        case
            when
                lag(distances.window_start) over level_history
                = distances.window_start - interval {{ seconds }} second
                then (
                    abs(lag(distances.distance_ticks) over level_history)
                    - abs(distances.distance_ticks)
                ) / {{ seconds }}
            else 0
        end as approach_velocity,
        case
            when not zone_gamma.gex_unknown
                then zone_gamma.zone_abs_gex / (zone_gamma.grid_abs_gex + 1e-6)
        end as gex_abs_share_in_zone,
        case
            when not zone_gamma.gex_unknown
                then zone_gamma.zone_net_gex / (zone_gamma.zone_abs_gex + 1e-6)
        end as gex_imbalance_in_zone,
        {%- for side in ['ask', 'bid'] %}
        {%- set outer_loop = loop %}
        {%- for name, _ in level_side_features() %}
        sides_pivoted.{{ side }}_{{ name }}{{ "," if not (outer_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from distances
    inner join sides_pivoted
        on
            distances.symbol = sides_pivoted.symbol
            and distances.dt = sides_pivoted.dt
            and distances.window_start = sides_pivoted.window_start
            and distances.level_id = sides_pivoted.level_id
    inner join zone_gamma
        on
            distances.symbol = zone_gamma.symbol
            and distances.dt = zone_gamma.dt
            and distances.window_start = zone_gamma.window_start
            and distances.level_id = zone_gamma.level_id
    window level_history as (
        partition by distances.symbol, distances.dt, distances.level_id
        order by distances.window_start
    )
)

select
    symbol,
    dt,
    window_start,
    window_end,
    level_id,
    level_price,
    spot_price,
    window_valid,
    {%- for name, _ in level_feature_columns() %}
    {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
from final
