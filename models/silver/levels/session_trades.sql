{{ config(materialized='day_partitioned') }}

-- Trades (`T` records: one per aggressor) of each included day's selected contract: what the
-- levels, the bars and the outcome labels read. A trade without a price (UNDEF_PRICE) is no
-- trade price: left out, and counted by the test trades_without_a_price.
with trades as (
    select
        symbol,
        dt,
        record_index,
        ts_recv,
        price,
        size,
        side
    from {{ ref('futures_mbo') }}
    where action = 'T' and price != {{ undef_price() }} and {{ in_build_days() }}
),

included_days as (
    select
        dt,
        selected_symbol
    from {{ ref('contract_day_selection') }}
    where is_included and {{ in_build_days() }}
),

final as (
    select
        trades.symbol,
        trades.dt,
        trades.record_index,
        trades.ts_recv as ts_recv_ns,
        cast(trades.size as bigint) as trade_size,
        make_timestamp(trades.ts_recv // 1000) as ts_recv,
        trades.price / 1e9 as trade_price,
        case trades.side when 'B' then 'buy' when 'A' then 'sell' end as aggressor_side
    from trades
    inner join included_days
        on
            trades.dt = included_days.dt
            and trades.symbol = included_days.selected_symbol
)

select
    symbol,
    dt,
    record_index,
    ts_recv_ns,
    ts_recv,
    trade_price,
    trade_size,
    aggressor_side
from final
