{%- set seconds = var('feature_window_seconds') -%}
{%- set tick = var('futures_tick_size') -%}
-- Per `feature_window_seconds` window of the research window: market-wide features that belong
-- to no level (SPEC 9), part of every trigger vector without a level prefix.
with calendar as (
    select
        dt,
        session_window_start,
        session_window_end
    from {{ ref('session_calendar') }}
),

seconds as (
    select
        book.symbol,
        book.dt,
        book.window_start as second_start,
        book.best_bid_price,
        book.best_bid_size,
        book.best_ask_price,
        book.best_ask_size,
        book.spot_price,
        book.book_valid,
        {{ window_floor('book.window_start', seconds) }} as window_start
    from {{ ref('book_snapshot_1s') }} as book
    inner join calendar
        on
            book.dt = calendar.dt
            and book.window_start >= calendar.session_window_start
            and book.window_start < calendar.session_window_end
),

windows as (
    select
        symbol,
        dt,
        window_start,
        window_start + interval {{ seconds }} second as window_end,
        arg_max(best_bid_price, second_start) as best_bid_price,
        arg_max(best_bid_size, second_start) as best_bid_size,
        arg_max(best_ask_price, second_start) as best_ask_price,
        arg_max(best_ask_size, second_start) as best_ask_size,
        arg_max(spot_price, second_start) as spot_price,
        bool_and(book_valid) as book_valid
    from seconds
    group by symbol, dt, window_start
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
