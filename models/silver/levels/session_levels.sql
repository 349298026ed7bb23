{{ config(materialized='day_partitioned') }}

{%- set tick = var('futures_tick_size') -%}
{%- set min_ticks = (var('placebo_offset_min_points') / tick) | int -%}
{%- set max_ticks = (var('placebo_offset_max_points') / tick) | int -%}
-- The key levels of each included contract-day, each with the interval in which it is
-- the known value: a window extreme from the end of its window; an SMA of bar closes from each
-- bar's close until the next. Beside each (level_kind 'real'), its placebo: the same level
-- shifted by a seeded offset, in effect only while it is at least the smallest offset away
-- from every real level in effect.
with definitions as (
    select
        level_id,
        level_rule,
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
    where {{ in_build_days() }}
),

bars as (
    select
        symbol,
        dt,
        bar_end,
        close_price,
        row_number() over (partition by symbol, dt order by bar_start) as bar_number
    from {{ ref('futures_bars') }}
    where {{ in_build_days() }}
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
    where definitions.level_rule = 'window_extreme'
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
    where definitions.level_rule = 'bar_close_sma'
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

real_levels as (
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
    -- a bar closing at the end of the UTC day gives a value that is never in effect
    qualify valid_from < valid_to
),

placebo_candidates as (
    -- per session and level, `placebo_candidates` seeded offsets: a size on the tick grid
    -- between the bounds and a sign, each from the md5 of the seed, the day, the level and the
    -- candidate's number (the same on every machine and run)
    select
        levels.symbol,
        levels.dt,
        levels.level_id,
        candidates.candidate,
        (
            case
                when
                    md5_number(
                        concat_ws('|', {{ var('placebo_seed') }}, levels.dt, levels.level_id, candidates.candidate, 'sign')
                    ) % 2 = 0
                    then 1
                else -1
            end
        )
        * (
            {{ min_ticks }}
            + cast(
                md5_number(
                    concat_ws('|', {{ var('placebo_seed') }}, levels.dt, levels.level_id, candidates.candidate, 'size')
                ) % {{ max_ticks - min_ticks + 1 }} as integer
            )
        ) as offset_ticks,
        arg_min(levels.level_price, levels.valid_from) as first_price,
        min(levels.valid_from) as first_known
    from real_levels as levels
    cross join range({{ var('placebo_candidates') }}) as candidates (candidate)
    group by levels.symbol, levels.dt, levels.level_id, candidates.candidate
),

placebo_offsets as (
    -- the first candidate clear of every real level in effect when the level is first known
    -- (chosen from what is known then: the placebo is as causal as its level)
    select
        candidates.symbol,
        candidates.dt,
        candidates.level_id,
        arg_min(candidates.offset_ticks, candidates.candidate) as offset_ticks
    from placebo_candidates as candidates
    inner join real_levels
        on
            candidates.symbol = real_levels.symbol
            and candidates.dt = real_levels.dt
            and candidates.first_known >= real_levels.valid_from
            and candidates.first_known < real_levels.valid_to
    group by candidates.symbol, candidates.dt, candidates.level_id, candidates.candidate
    having
        min(abs(candidates.first_price + candidates.offset_ticks * {{ tick }} - real_levels.level_price))
        >= {{ min_ticks * tick }}
    qualify candidates.candidate = min(candidates.candidate) over (
        partition by candidates.symbol, candidates.dt, candidates.level_id
    )
),

cut_points as (
    -- where any real level changes: the placebo's distance to them changes only there
    select distinct
        symbol,
        dt,
        valid_from as cut
    from real_levels
),

placebo_segments as (
    select
        real_levels.symbol,
        real_levels.dt,
        real_levels.level_id,
        real_levels.valid_from as source_from,
        cast(real_levels.level_price + placebo_offsets.offset_ticks * {{ tick }} as double)
            as level_price,
        placebo_offsets.offset_ticks,
        real_levels.observations,
        cut_points.cut as segment_from,
        coalesce(
            lead(cut_points.cut) over segments, real_levels.valid_to
        ) as segment_to
    from real_levels
    inner join placebo_offsets
        on
            real_levels.symbol = placebo_offsets.symbol
            and real_levels.dt = placebo_offsets.dt
            and real_levels.level_id = placebo_offsets.level_id
    inner join cut_points
        on
            real_levels.symbol = cut_points.symbol
            and real_levels.dt = cut_points.dt
            and real_levels.valid_from <= cut_points.cut
            and real_levels.valid_to > cut_points.cut
    window segments as (
        partition by real_levels.symbol, real_levels.dt, real_levels.level_id, real_levels.valid_from
        order by cut_points.cut
    )
),

placebo_clearance as (
    -- each segment with its distance in ticks to the nearest real level in effect
    select
        placebo_segments.symbol,
        placebo_segments.dt,
        placebo_segments.level_id,
        placebo_segments.source_from,
        placebo_segments.segment_from,
        any_value(placebo_segments.segment_to) as segment_to,
        any_value(placebo_segments.level_price) as level_price,
        any_value(placebo_segments.offset_ticks) as offset_ticks,
        any_value(placebo_segments.observations) as observations,
        min(abs(placebo_segments.level_price - real_levels.level_price)) / {{ tick }}
            as clearance_ticks
    from placebo_segments
    inner join real_levels
        on
            placebo_segments.symbol = real_levels.symbol
            and placebo_segments.dt = real_levels.dt
            and placebo_segments.segment_from >= real_levels.valid_from
            and placebo_segments.segment_from < real_levels.valid_to
    group by all
),

placebo_islands as (
    -- consecutive clear segments of one value: one interval
    select
        *,
        segment_from
        - to_microseconds(
            cast(coalesce(sum(date_diff('microsecond', segment_from, segment_to)) over island_order, 0) as bigint)
        ) as island
    from placebo_clearance
    where clearance_ticks >= {{ min_ticks }}
    window island_order as (
        partition by symbol, dt, level_id, source_from
        order by segment_from
        rows between unbounded preceding and 1 preceding
    )
),

placebo_levels as (
    select
        symbol,
        dt,
        level_id,
        any_value(level_price) as level_price,
        min(segment_from) as valid_from,
        max(segment_to) as valid_to,
        any_value(observations) as observations,
        any_value(offset_ticks) as offset_ticks
    from placebo_islands
    group by symbol, dt, level_id, source_from, island
)

select
    symbol,
    dt,
    level_id,
    'real' as level_kind,
    level_price,
    valid_from,
    valid_to,
    observations,
    cast(null as integer) as placebo_offset_ticks
from real_levels
union all
select
    symbol,
    dt,
    level_id,
    'placebo' as level_kind,
    level_price,
    valid_from,
    valid_to,
    observations,
    offset_ticks as placebo_offset_ticks
from placebo_levels
