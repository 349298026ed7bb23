{{ config(materialized='day_partitioned') }}

-- The `feature_window_seconds` windows of the research window: the book at the window's last
-- second, and whether the book was valid in every second of it. What level_features and
-- market_features compute their windows on.
with windows as (
    select
        symbol,
        dt,
        window_start,
        any_value(window_end) as window_end,
        arg_max(best_bid_price, second_start) as best_bid_price,
        arg_max(best_bid_size, second_start) as best_bid_size,
        arg_max(best_ask_price, second_start) as best_ask_price,
        arg_max(best_ask_size, second_start) as best_ask_size,
        arg_max(spot_price, second_start) as spot_price,
        bool_and(book_valid) as book_valid,
        count(*) as seconds_present
    from {{ ref('research_seconds') }}
    where {{ in_build_days() }}
    group by symbol, dt, window_start
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
    spot_price,
    book_valid,
    cast(seconds_present as integer) as seconds_present
from windows
order by symbol, dt, window_start
