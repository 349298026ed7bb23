{{ config(materialized='day_partitioned', build_dates='inputs') }}

-- Research-window trade volume of every outright contract of the root, every day it has data.
with futures_mbo as (
    select
        dt,
        symbol,
        action,
        size,
        ts_recv
    from {{ ref('futures_mbo') }}
    where
        {{ in_build_days() }}
        and
        regexp_full_match(
            symbol,
            '{{ var("selection_root_symbol") }}[{{ var("selection_contract_months") }}][0-9]{1,2}'
        )
),

contract_days as (
    select distinct
        dt,
        symbol
    from futures_mbo
),

-- the time zone conversion is the costly part: only trades need it (a few % of the records)
trades as (
    select
        dt,
        symbol,
        size,
        {{ exchange_local_time('ts_recv') }} as ts_exchange_local
    from futures_mbo
    where action = 'T'
),

session_trades as (
    select
        dt,
        symbol,
        sum(size) as session_trade_volume,
        count(*) as session_trade_count
    from trades
    where {{ in_session_window('ts_exchange_local', 'dt') }}
    group by dt, symbol
),

final as (
    select
        contract_days.dt,
        contract_days.symbol,
        coalesce(session_trades.session_trade_volume, 0) as session_trade_volume,
        coalesce(session_trades.session_trade_count, 0) as session_trade_count
    from contract_days
    left join session_trades
        on
            contract_days.dt = session_trades.dt
            and contract_days.symbol = session_trades.symbol
)

select
    dt,
    symbol,
    cast(session_trade_volume as bigint) as session_trade_volume,
    cast(session_trade_count as bigint) as session_trade_count
from final
