-- Each option of the included contract-days, second by second: quote, volatility, exposure.
with engine_rows as (
    select
        symbol,
        dt,
        window_start,
        instrument_id,
        raw_symbol,
        strike_price,
        option_right,
        expiration,
        is_0dte,
        bid_price,
        ask_price,
        mid_price,
        futures_spot,
        minutes_to_expiry,
        implied_volatility,
        iv_status,
        iv_age_seconds,
        gamma,
        open_interest,
        multiplier,
        gex
    from {{ ref('engine_options_quotes_1s') }}
),

included_days as (
    select
        dt,
        selected_symbol
    from {{ ref('contract_day_selection') }}
    where is_included
),

final as (
    select engine_rows.*
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
    instrument_id,
    raw_symbol,
    strike_price,
    option_right,
    expiration,
    is_0dte,
    bid_price,
    ask_price,
    mid_price,
    futures_spot,
    minutes_to_expiry,
    implied_volatility,
    iv_status,
    iv_age_seconds,
    gamma,
    open_interest,
    multiplier,
    gex
from final
