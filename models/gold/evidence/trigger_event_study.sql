{%- set tick = var('futures_tick_size') -%}
{%- set zone = var('level_zone_ticks') -%}
{%- set before = var('event_study_seconds_before') -%}
{%- set after = var('event_study_seconds_after') -%}
-- What each side of the level did, second by second, around a trigger: per level kind,
-- outcome, second from `ts`, side and bucket (physics_bands, and the whole zone), the mean over
-- the triggers of the bucket's depth, pull/add log, reprice-away share, add, pull and fill
-- intensity, and (zone) the depth's centre-of-mass distance from the level. Sides are the
-- level's: asks at or above it, bids at or below it, mirrored so that every approach reads as
-- one from below (for an approach from above, `ask` is the bids below the level, the side
-- price meets). Intervals (95%) are clustered by session (clustered_outcome_means). Seconds
-- after the trigger are descriptive: nothing reads them back.
with triggers as (
    select
        triggers.trigger_id,
        triggers.symbol,
        triggers.dt,
        triggers.ts,
        triggers.level_kind,
        triggers.level_price,
        outcomes.outcome,
        triggers.approach_dir = 'UP' as from_below
    from {{ ref('approach_triggers') }} as triggers
    inner join {{ ref('trigger_outcomes') }} as outcomes
        on triggers.trigger_id = outcomes.trigger_id
    where outcomes.outcome is not null
),

buckets as (
    select
        band as bucket,
        min_ticks,
        max_ticks
    from {{ ref('physics_bands') }}
    union all
    select
        'zone' as bucket,
        0 as min_ticks,
        {{ zone }} as max_ticks
),

zone_prices as (
    -- each trigger's prices in the level's zone, second by second, on the level's sides
    select
        triggers.trigger_id,
        date_diff('second', triggers.ts, flow.window_start) as second_offset,
        case when triggers.from_below = (flow.side = 'ask') then 'ask' else 'bid' end as side,
        cast(round(
            case flow.side
                when 'ask' then flow.price - triggers.level_price
                else triggers.level_price - flow.price
            end / {{ tick }}
        ) as integer) as ticks_from_level,
        flow.depth_qty_start,
        flow.depth_qty_end,
        flow.add_qty,
        flow.pull_qty_rest,
        flow.fill_qty,
        flow.reprice_out_away_qty,
        flow.reprice_out_toward_qty
    from triggers
    inner join {{ ref('depth_and_flow_1s') }} as flow
        on
            triggers.symbol = flow.symbol
            and triggers.dt = flow.dt
            and triggers.ts - interval {{ before }} second <= flow.window_start
            and triggers.ts + interval {{ after }} second > flow.window_start
    where
        (
            flow.side = 'ask'
            and flow.price >= triggers.level_price
            and flow.price <= triggers.level_price + {{ zone * tick }}
        )
        or (
            flow.side = 'bid'
            and flow.price <= triggers.level_price
            and flow.price >= triggers.level_price - {{ zone * tick }}
        )
),

bucket_sums as (
    select
        zone_prices.trigger_id,
        zone_prices.second_offset,
        zone_prices.side,
        buckets.bucket,
        sum(zone_prices.depth_qty_start) as depth_start,
        sum(zone_prices.depth_qty_end) as depth_end,
        sum(zone_prices.depth_qty_end * zone_prices.ticks_from_level) as depth_ticks_end,
        sum(zone_prices.add_qty) as add_qty,
        sum(zone_prices.pull_qty_rest) as pull_qty_rest,
        sum(zone_prices.fill_qty) as fill_qty,
        sum(zone_prices.reprice_out_away_qty) as reprice_away_qty,
        sum(zone_prices.reprice_out_toward_qty) as reprice_toward_qty
    from zone_prices
    inner join buckets
        on zone_prices.ticks_from_level between buckets.min_ticks and buckets.max_ticks
    group by all
),

trigger_cells as (
    -- every trigger, second, side and bucket: an empty, quiet bucket is 0 depth and flow
    select
        triggers.trigger_id,
        triggers.dt,
        triggers.level_kind,
        triggers.outcome,
        second_steps.second_offset,
        sides.side,
        buckets.bucket,
        sums.depth_ticks_end,
        coalesce(sums.depth_start, 0) as depth_start,
        coalesce(sums.depth_end, 0) as depth_end,
        coalesce(sums.add_qty, 0) as add_qty,
        coalesce(sums.pull_qty_rest, 0) as pull_qty_rest,
        coalesce(sums.fill_qty, 0) as fill_qty,
        coalesce(sums.reprice_away_qty, 0) as reprice_away_qty,
        coalesce(sums.reprice_toward_qty, 0) as reprice_toward_qty
    from triggers
    cross join range(-{{ before }}, {{ after }}) as second_steps (second_offset)
    cross join (values ('ask'), ('bid')) as sides (side)
    cross join buckets
    left join bucket_sums as sums
        on
            triggers.trigger_id = sums.trigger_id
            and second_steps.second_offset = sums.second_offset
            and sides.side = sums.side
            and buckets.bucket = sums.bucket
),

trigger_measures as (
    -- level_features' measures, per second (quantities with an epsilon of 1)
    select
        trigger_id,
        dt,
        level_kind,
        outcome,
        second_offset,
        side,
        bucket,
        depth_end as depth_qty_end,
        ln((pull_qty_rest + 1) / (add_qty + 1)) as pull_add_log_rest,
        case
            when reprice_away_qty + reprice_toward_qty = 0 then 0.5
            else reprice_away_qty / (reprice_away_qty + reprice_toward_qty + 1)
        end as reprice_away_share,
        add_qty / (depth_start + 1) as add_intensity,
        pull_qty_rest / (depth_start + 1) as pull_intensity_rest,
        fill_qty / (depth_start + 1) as fill_intensity,
        -- only the whole zone has a centre of mass, and only while it holds depth
        case when bucket = 'zone' and depth_end > 0 then depth_ticks_end / depth_end end
            as com_distance_ticks
    from trigger_cells
),

session_sums as (
    select
        level_kind,
        outcome,
        dt,
        second_offset,
        side,
        bucket,
        count(*) as triggers,
        {%- for value in event_study_measures() %}
        {{ ordered_sum_at(event_study_measures(), loop.index, 'trigger_id') }} as {{ value }}_sum,
        count({{ value }}) as {{ value }}_count{{ "," if not loop.last }}
        {%- endfor %}
    from trigger_measures
    group by all
),

final as (
    {{ clustered_outcome_means('session_sums', ['second_offset', 'side', 'bucket'], event_study_measures()) }}
)

select
    level_kind,
    outcome,
    cast(second_offset as integer) as second_offset,
    side,
    bucket,
    triggers,
    sessions,
    {%- for value in event_study_measures() %}
    {{ value }},
    {{ value }}_ci_low,
    {{ value }}_ci_high{{ "," if not loop.last }}
    {%- endfor %}
from final
order by level_kind, outcome, side, bucket, second_offset
