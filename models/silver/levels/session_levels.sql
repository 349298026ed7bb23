-- The key levels of each included contract-day, each with the interval in which it is
-- the known value: a window extreme from the end of its window; an SMA of bar closes from each
-- bar's close until the next.
with definitions as (
    select
        level_id,
        level_kind,
        cast(window_start as time) as window_start,
        cast(window_end as time) as window_end,
        aggregate,
        sma_periods
    from {{ ref('session_level_definitions') }}
),

trades as (
    select
        symbol,
        dt,
        ts_recv,
        trade_price
    from {{ ref('session_trades') }}
),

bars as (
    select
        symbol,
        dt,
        bar_end,
        close_price,
        row_number() over (partition by symbol, dt order by bar_start) as bar_number
    from {{ ref('futures_bars') }}
),

trade_days as (
    select distinct
        symbol,
        dt
    from trades
),

window_bounds as (
    select
        trade_days.symbol,
        trade_days.dt,
        definitions.level_id,
        definitions.aggregate,
        {{ exchange_time_utc_of('trade_days.dt', 'definitions.window_start') }} as window_start_utc,
        {{ exchange_time_utc_of('trade_days.dt', 'definitions.window_end') }} as window_end_utc
    from trade_days
    cross join definitions
    where definitions.level_kind = 'window_extreme'
),

window_extremes as (
    select
        window_bounds.symbol,
        window_bounds.dt,
        window_bounds.level_id,
        window_bounds.window_end_utc as valid_from,
        case window_bounds.aggregate
            when 'max' then max(trades.trade_price)
            when 'min' then min(trades.trade_price)
        end as level_price,
        count(*) as observations
    from window_bounds
    inner join trades
        on
            window_bounds.symbol = trades.symbol
            and window_bounds.dt = trades.dt
            and window_bounds.window_start_utc <= trades.ts_recv
            and window_bounds.window_end_utc > trades.ts_recv
    group by
        window_bounds.symbol,
        window_bounds.dt,
        window_bounds.level_id,
        window_bounds.window_end_utc,
        window_bounds.aggregate
),

moving_averages as (
    -- the mean of the last `sma_periods` bar closes, known at the close of the last bar;
    -- rounded to the tick grid so that ticks from the level are whole
    select
        bars.symbol,
        bars.dt,
        definitions.level_id,
        bars.bar_end as valid_from,
        round(avg(history.close_price) / {{ var('futures_tick_size') }})
        * {{ var('futures_tick_size') }} as level_price,
        count(*) as observations
    from bars
    cross join definitions
    inner join bars as history
        on
            bars.symbol = history.symbol
            and bars.dt = history.dt
            and history.bar_number between bars.bar_number - definitions.sma_periods + 1
            and bars.bar_number
    where definitions.level_kind = 'bar_close_sma'
    group by bars.symbol, bars.dt, definitions.level_id, bars.bar_end, definitions.sma_periods
    having count(*) = definitions.sma_periods
),

levels as (
    select
        symbol,
        dt,
        level_id,
        valid_from,
        level_price,
        observations
    from window_extremes
    union all
    select
        symbol,
        dt,
        level_id,
        valid_from,
        level_price,
        observations
    from moving_averages
),

final as (
    select
        symbol,
        dt,
        level_id,
        level_price,
        valid_from,
        observations,
        coalesce(
            lead(valid_from) over (partition by symbol, dt, level_id order by valid_from),
            cast(dt + interval 1 day as timestamp)
        ) as valid_to
    from levels
)

select
    symbol,
    dt,
    level_id,
    level_price,
    valid_from,
    valid_to,
    observations
from final
-- a bar closing at the end of the UTC day gives a value that is never in effect
where valid_from < valid_to
