{{ config(materialized='view') }}

-- One row per second of each included contract-day: the book after the second's last event.
with engine_rows as (
    select
        symbol,
        dt,
        window_start,
        best_bid_price,
        best_bid_size,
        best_ask_price,
        best_ask_size,
        last_trade_price,
        spot_price,
        book_valid
    from {{ ref('engine_book_snapshot_1s') }}
),

included_days as (
    select
        dt,
        selected_symbol
    from {{ ref('contract_day_selection') }}
    where is_included
),

final as (
    select
        engine_rows.symbol,
        engine_rows.dt,
        engine_rows.window_start,
        engine_rows.best_bid_price,
        engine_rows.best_bid_size,
        engine_rows.best_ask_price,
        engine_rows.best_ask_size,
        engine_rows.last_trade_price,
        engine_rows.spot_price,
        engine_rows.book_valid,
        engine_rows.window_start + interval 1 second as window_end,
        (engine_rows.best_bid_price + engine_rows.best_ask_price) / 2 as mid_price
    from engine_rows
    inner join included_days
        on
            engine_rows.dt = included_days.dt
            and engine_rows.symbol = included_days.selected_symbol
)

select
    symbol,
    dt,
    window_start,
    window_end,
    best_bid_price,
    best_bid_size,
    best_ask_price,
    best_ask_size,
    mid_price,
    last_trade_price,
    spot_price,
    book_valid
from final
