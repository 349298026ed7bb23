{{ config(severity='warn') }}

-- T records of an included day's selected contract without a price (UNDEF_PRICE): left out of
-- session_trades, so levels, bars and labels never read 9.2e9 as a price. Each is listed; the
-- build warns with their count.
select
    mbo.symbol,
    mbo.dt,
    mbo.record_index,
    mbo.ts_recv
from {{ ref('futures_mbo') }} as mbo
inner join {{ ref('contract_day_selection') }} as selection
    on mbo.dt = selection.dt and mbo.symbol = selection.selected_symbol
where selection.is_included and mbo.action = 'T' and mbo.price = {{ undef_price() }}
