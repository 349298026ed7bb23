{{ config(materialized='day_partitioned') }}

-- OHLCV bars of `bar_seconds` (2 minutes) from the trades of each included contract-day,
-- epoch-aligned by ts_recv; bars without trades have no row.
with trades as (
    select
        symbol,
        dt,
        ts_recv_ns,
        record_index,
        trade_price,
        trade_size,
        {{ window_floor('ts_recv', var('bar_seconds')) }} as bar_start
    from {{ ref('session_trades') }}
    where {{ in_build_days() }}
),

final as (
    select
        symbol,
        dt,
        bar_start,
        bar_start + interval {{ var('bar_seconds') }} second as bar_end,
        arg_min(trade_price, (ts_recv_ns, record_index)) as open_price,
        max(trade_price) as high_price,
        min(trade_price) as low_price,
        arg_max(trade_price, (ts_recv_ns, record_index)) as close_price,
        sum(trade_size) as volume,
        count(*) as trade_count
    from trades
    group by symbol, dt, bar_start
)

select
    symbol,
    dt,
    bar_start,
    bar_end,
    open_price,
    high_price,
    low_price,
    close_price,
    cast(volume as bigint) as volume,
    trade_count
from final
