{{ config(materialized='day_partitioned') }}

{%- set tick = var('futures_tick_size') -%}
{%- set barrier = var('label_barrier_ticks') -%}
{%- set bar_seconds = var('bar_seconds') -%}
{%- set horizons = var('label_horizon_bars') -%}
{%- set primary = var('label_primary_horizon') -%}
-- What happened after each trigger (real and placebo levels), from the trades after `ts`: barriers
-- `label_barrier_ticks` beyond the level in the direction of approach (BREAK) and before it
-- (REJECT); horizon h<k> is the first k + 1 bars of `bar_seconds`. The first barrier traded
-- at or through decides; both first in the same second is WHIPSAW; neither is CHOP; a horizon
-- the day's trades do not cover is NULL unless a barrier was hit within it.
with triggers as (
    select
        trigger_id,
        symbol,
        dt,
        ts,
        level_id,
        level_kind,
        level_price,
        approach_dir,
        case approach_dir when 'UP' then 1 else -1 end as direction
    from {{ ref('approach_triggers') }}
    where {{ in_build_days() }}
),

trades as (
    select
        symbol,
        dt,
        ts_recv,
        trade_price
    from {{ ref('session_trades') }}
    where {{ in_build_days() }}
),

day_ends as (
    select
        symbol,
        dt,
        max(ts_recv) as last_trade_ts
    from trades
    group by symbol, dt
),

barriers as (
    select
        *,
        level_price + direction * {{ barrier * tick }} as break_price,
        level_price - direction * {{ barrier * tick }} as reject_price
    from triggers
),

after_trigger as (
    -- every trade in the longest horizon, with the whole second since the trigger it fell in
    select
        barriers.trigger_id,
        barriers.direction,
        barriers.level_price,
        trades.trade_price,
        date_diff('second', barriers.ts, trades.ts_recv) as elapsed_seconds,
        barriers.direction * (trades.trade_price - barriers.break_price) >= 0 as at_break,
        barriers.direction * (barriers.reject_price - trades.trade_price) >= 0 as at_reject
    from barriers
    inner join trades
        on
            barriers.symbol = trades.symbol
            and barriers.dt = trades.dt
            and barriers.ts <= trades.ts_recv
            and barriers.ts + interval {{ horizons * bar_seconds }} second > trades.ts_recv
),

hits as (
    select
        trigger_id,
        min(elapsed_seconds) filter (where at_break) as break_seconds,
        min(elapsed_seconds) filter (where at_reject) as reject_seconds,
        max(direction * (trade_price - level_price)) filter (
            where elapsed_seconds < {{ (primary + 1) * bar_seconds }}
        ) / {{ tick }} as max_favorable_excursion_ticks,
        max(direction * (level_price - trade_price)) filter (
            where elapsed_seconds < {{ (primary + 1) * bar_seconds }}
        ) / {{ tick }} as max_adverse_excursion_ticks
    from after_trigger
    group by trigger_id
),

labelled as (
    select
        barriers.*,
        hits.break_seconds,
        hits.reject_seconds,
        hits.max_favorable_excursion_ticks,
        hits.max_adverse_excursion_ticks,
        day_ends.last_trade_ts,
        {%- for horizon in range(horizons) %}
        {%- set limit = (horizon + 1) * bar_seconds %}
        case
            when
                hits.break_seconds < {{ limit }}
                and hits.break_seconds = hits.reject_seconds
                then 'WHIPSAW'
            when
                hits.break_seconds < {{ limit }}
                and (hits.reject_seconds is null or hits.break_seconds < hits.reject_seconds)
                then 'BREAK'
            when hits.reject_seconds < {{ limit }} then 'REJECT'
            when day_ends.last_trade_ts >= barriers.ts + interval {{ limit }} second then 'CHOP'
        end as outcome_h{{ horizon }}{{ "," if not loop.last }}
        {%- endfor %}
    from barriers
    left join hits
        on barriers.trigger_id = hits.trigger_id
    left join day_ends
        on barriers.symbol = day_ends.symbol and barriers.dt = day_ends.dt
),

final as (
    select
        *,
        outcome_h{{ primary }} as outcome,
        least(break_seconds, reject_seconds) as seconds_to_first_hit,
        case
            when break_seconds = reject_seconds then 'WHIPSAW'
            when reject_seconds is null or break_seconds < reject_seconds then 'BREAK'
            when reject_seconds is not null then 'REJECT'
        end as first_hit
    from labelled
)

select
    trigger_id,
    symbol,
    dt,
    ts,
    level_id,
    level_kind,
    level_price,
    approach_dir,
    break_price,
    reject_price,
    outcome,
    {%- for horizon in range(horizons) %}
    outcome_h{{ horizon }},
    {%- endfor %}
    case when seconds_to_first_hit is not null then first_hit end as first_hit,
    seconds_to_first_hit,
    ts + to_seconds(seconds_to_first_hit) as first_hit_ts,
    case
        when outcome = 'CHOP' then ts + interval {{ (primary + 1) * bar_seconds }} second
        when outcome is not null then ts + to_seconds(seconds_to_first_hit + 1)
    end as outcome_known_ts,
    max_favorable_excursion_ticks,
    max_adverse_excursion_ticks
from final
