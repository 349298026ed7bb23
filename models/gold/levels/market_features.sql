{{ config(materialized='day_partitioned') }}

{%- set seconds = var('feature_window_seconds') -%}
{%- set tick = var('futures_tick_size') -%}
-- Per `feature_window_seconds` window of the research window: market-wide features that belong
-- to no level, part of every trigger vector without a level prefix.
with windows as (
    select
        symbol,
        dt,
        window_start,
        window_end,
        best_bid_price,
        best_bid_size,
        best_ask_price,
        best_ask_size,
        spot_price,
        book_valid
    from {{ ref('feature_windows') }}
    where {{ in_build_days() }}
),

aggressors as (
    select
        symbol,
        dt,
        {{ window_floor('ts_recv', seconds) }} as window_start,
        coalesce(sum(trade_size) filter (where aggressor_side = 'buy'), 0) as buy_volume,
        coalesce(sum(trade_size) filter (where aggressor_side = 'sell'), 0) as sell_volume,
        sum(trade_size) as volume
    from {{ ref('session_trades') }}
    where {{ in_build_days() }}
    group by all
),

final as (
    select
        windows.symbol,
        windows.dt,
        windows.window_start,
        windows.window_end,
        windows.book_valid as window_valid,
        (windows.best_ask_price - windows.best_bid_price) / {{ tick }} as spread_ticks,
        ln((windows.best_bid_size + 1) / (windows.best_ask_size + 1))
            as top_of_book_imbalance_log,
        case
            when
                lag(windows.window_start) over session_history
                = windows.window_start - interval {{ seconds }} second
                then (windows.spot_price - lag(windows.spot_price) over session_history) / {{ tick }}
            else 0
        end as spot_return_ticks,
        coalesce(
            (aggressors.buy_volume - aggressors.sell_volume) / (aggressors.volume + 1), 0
        ) as trade_aggressor_imbalance
    from windows
    left join aggressors
        on
            windows.symbol = aggressors.symbol
            and windows.dt = aggressors.dt
            and windows.window_start = aggressors.window_start
    window session_history as (
        partition by windows.symbol, windows.dt order by windows.window_start
    )
)

select
    symbol,
    dt,
    window_start,
    window_end,
    window_valid,
    {%- for name, _ in market_feature_columns() %}
    {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
from final
