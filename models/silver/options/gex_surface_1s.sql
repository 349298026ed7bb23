{{ config(materialized='day_partitioned') }}

-- Gamma exposure by strike on the strike grid around spot, second by second.
with by_strike as not materialized (
    -- the strikes' signed sums, open interest and counts, from the options engine (read
    -- three times rather than materialised once: 2.2 s less CPU over the demo)
    select
        symbol,
        dt,
        window_start,
        strike_price,
        call_gex,
        put_gex,
        call_gex_0dte,
        put_gex_0dte,
        call_open_interest,
        put_open_interest,
        options_listed,
        options_in_exposure,
        options_without_open_interest,
        options_listed - options_in_exposure as options_without_exposure
    from {{ ref('engine_gex_by_strike_1s') }}
    where {{ in_build_days() }}
),

coverage as (
    -- how complete each second's chain is: options without volatility or open interest
    -- are left out of the exposures
    select
        symbol,
        dt,
        window_start,
        sum(options_listed)::bigint as options_listed,
        sum(options_in_exposure)::bigint as options_in_exposure,
        sum(options_without_open_interest)::bigint as options_without_open_interest
    from by_strike
    group by symbol, dt, window_start
),

walls as (
    -- over every listed strike, not only those near spot; ties go to the lower strike
    select
        symbol,
        dt,
        window_start,
        arg_max(strike_price, [abs(call_gex), -strike_price]) filter (
            where call_gex != 0
        ) as call_wall,
        arg_max(strike_price, [abs(put_gex), -strike_price]) filter (
            where put_gex != 0
        ) as put_wall,
        arg_max(strike_price, [abs(call_gex_0dte), -strike_price]) filter (
            where call_gex_0dte != 0
        ) as call_wall_0dte,
        arg_max(strike_price, [abs(put_gex_0dte), -strike_price]) filter (
            where put_gex_0dte != 0
        ) as put_wall_0dte
    from by_strike
    group by symbol, dt, window_start
),

spot as (
    select
        book_snapshot_1s.symbol,
        book_snapshot_1s.dt,
        book_snapshot_1s.window_start,
        book_snapshot_1s.spot_price
    from {{ ref('book_snapshot_1s') }} as book_snapshot_1s
    inner join coverage
        on
            book_snapshot_1s.symbol = coverage.symbol
            and book_snapshot_1s.dt = coverage.dt
            and book_snapshot_1s.window_start = coverage.window_start
    where book_snapshot_1s.spot_price is not null and {{ in_build_days('book_snapshot_1s.dt') }}
),

grid as (
    select
        spot.symbol,
        spot.dt,
        spot.window_start,
        spot.spot_price,
        round(spot.spot_price / {{ var('option_strike_step') }}) * {{ var('option_strike_step') }}
        + {{ var('option_strike_step') }} * grid_steps.strike_step as strike_price
    from spot
    cross join
        range(
            -{{ var('gex_strikes_around_spot') }}, {{ var('gex_strikes_around_spot') }} + 1
        ) as grid_steps (strike_step)
),

surface as (
    select
        grid.symbol,
        grid.dt,
        grid.window_start,
        grid.strike_price,
        grid.spot_price,
        -- a grid strike without listed options has no exposure: a known zero
        {%- for column in ['call_gex', 'put_gex', 'call_gex_0dte', 'put_gex_0dte'] %}
        case
            when by_strike.strike_price is null then 0.0 else by_strike.{{ column }}
        end as {{ column }},
        {%- endfor %}
        coalesce(by_strike.call_open_interest, 0) as call_open_interest,
        coalesce(by_strike.put_open_interest, 0) as put_open_interest,
        coalesce(by_strike.options_without_exposure, 0) as options_without_exposure
    from grid
    left join by_strike
        on
            grid.symbol = by_strike.symbol
            and grid.dt = by_strike.dt
            and grid.window_start = by_strike.window_start
            and grid.strike_price = by_strike.strike_price
),

exposures as (
    select
        *,
        call_gex + put_gex as net_gex,
        abs(call_gex) + abs(put_gex) as abs_gex,
        call_gex_0dte + put_gex_0dte as net_gex_0dte,
        abs(call_gex_0dte) + abs(put_gex_0dte) as abs_gex_0dte
    from surface
),

{{ derivative_ctes(
    'exposures',
    ['net_gex', 'abs_gex', 'net_gex_0dte'],
    ['symbol', 'dt', 'strike_price'],
    'exposure'
) }},

final as (
    select
        exposure_d3.*,
        walls.call_wall,
        walls.put_wall,
        walls.call_wall_0dte,
        walls.put_wall_0dte,
        zero_gamma.zero_gamma_level,
        zero_gamma.zero_gamma_level_0dte,
        coverage.options_listed,
        coverage.options_in_exposure,
        coverage.options_without_open_interest,
        cast(
            round((exposure_d3.strike_price - exposure_d3.spot_price) / {{ var('futures_tick_size') }})
            as integer
        ) as rel_ticks,
        exposure_d3.net_gex / (exposure_d3.abs_gex + 1e-6) as imbalance,
        exposure_d3.net_gex_0dte / (exposure_d3.abs_gex_0dte + 1e-6) as imbalance_0dte,
        'calls {{ var("gex_dealer_sign")["call"] }}, puts {{ var("gex_dealer_sign")["put"] }}'
        as dealer_sign_policy
    from exposure_d3
    left join walls
        on
            exposure_d3.symbol = walls.symbol
            and exposure_d3.dt = walls.dt
            and exposure_d3.window_start = walls.window_start
    inner join coverage
        on
            exposure_d3.symbol = coverage.symbol
            and exposure_d3.dt = coverage.dt
            and exposure_d3.window_start = coverage.window_start
    left join {{ ref('engine_zero_gamma_1s') }} as zero_gamma
        on
            exposure_d3.symbol = zero_gamma.symbol
            and exposure_d3.dt = zero_gamma.dt
            and exposure_d3.window_start = zero_gamma.window_start
            and {{ in_build_days('zero_gamma.dt') }}
)

select
    symbol,
    dt,
    window_start,
    strike_price,
    rel_ticks,
    spot_price,
    call_gex,
    put_gex,
    net_gex,
    abs_gex,
    imbalance,
    call_open_interest,
    put_open_interest,
    options_without_exposure,
    net_gex_d1,
    net_gex_d2,
    net_gex_d3,
    abs_gex_d1,
    abs_gex_d2,
    abs_gex_d3,
    call_gex_0dte,
    put_gex_0dte,
    net_gex_0dte,
    abs_gex_0dte,
    imbalance_0dte,
    net_gex_0dte_d1,
    net_gex_0dte_d2,
    net_gex_0dte_d3,
    zero_gamma_level,
    zero_gamma_level_0dte,
    call_wall,
    put_wall,
    call_wall_0dte,
    put_wall_0dte,
    options_listed,
    options_in_exposure,
    options_without_open_interest,
    dealer_sign_policy
from final
-- time order: a window of seconds reads only its own row groups
order by symbol, dt, window_start, strike_price
