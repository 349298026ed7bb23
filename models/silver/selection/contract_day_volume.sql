-- Research-window trade volume of every outright contract of the root, every day it has data.
with futures_mbo as (
    select
        dt,
        symbol,
        action,
        size,
        {{ exchange_local_time('ts_recv') }} as ts_exchange_local
    from {{ ref('futures_mbo') }}
    where
        regexp_full_match(
            symbol,
            '{{ var("selection_root_symbol") }}[{{ var("selection_contract_months") }}][0-9]{1,2}'
        )
),

session_trades as (
    select
        dt,
        symbol,
        action = 'T'
        and {{ in_session_window('ts_exchange_local', 'dt') }} as is_session_trade,
        size
    from futures_mbo
),

final as (
    select
        dt,
        symbol,
        coalesce(sum(size) filter (where is_session_trade), 0) as session_trade_volume,
        count(*) filter (where is_session_trade) as session_trade_count
    from session_trades
    group by dt, symbol
)

select
    dt,
    symbol,
    cast(session_trade_volume as bigint) as session_trade_volume,
    cast(session_trade_count as bigint) as session_trade_count
from final
