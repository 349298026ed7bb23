{{ config(materialized='day_partitioned') }}

{%- set seconds = var('feature_window_seconds') -%}
-- The time grid every level model shares: each second of the research window
-- (session_calendar) with the book at its end and the `feature_window_seconds` window it
-- belongs to.
with calendar as (
    select
        dt,
        session_window_start,
        session_window_end
    from {{ ref('session_calendar') }}
    where {{ in_build_days() }}
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
    where {{ in_build_days('book.dt') }}
)

select
    symbol,
    dt,
    second_start,
    window_start,
    window_start + interval {{ seconds }} second as window_end,
    best_bid_price,
    best_bid_size,
    best_ask_price,
    best_ask_size,
    spot_price,
    book_valid
from seconds
order by symbol, dt, second_start
