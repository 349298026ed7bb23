{{ config(
    post_hook="{{ export_to_lake(this, 'selection', 'contract_day_selection.parquet') }}"
) }}

-- One row per session date with futures data: the contract to model and why a day is excluded.
with contract_day_volume as (
    select
        dt,
        symbol,
        session_trade_volume
    from {{ ref('contract_day_volume') }}
),

session_days as (
    select distinct dt
    from contract_day_volume
),

ranked as (
    select
        dt,
        symbol,
        session_trade_volume,
        sum(session_trade_volume) over (partition by dt) as outright_volume,
        row_number() over (
            partition by dt order by session_trade_volume desc, symbol asc
        ) as volume_rank
    from contract_day_volume
),

selected as (
    select
        dt,
        symbol as selected_symbol,
        session_trade_volume as selected_volume,
        outright_volume,
        session_trade_volume / outright_volume as dominance
    from ranked
    where volume_rank = 1 and outright_volume > 0
),

run_starts as (
    select
        *,
        coalesce(
            selected_symbol <> lag(selected_symbol) over (order by dt), true
        ) as starts_run
    from selected
),

runs as (
    select
        *,
        sum(cast(starts_run as integer)) over (
            order by dt rows unbounded preceding
        ) as run_number
    from run_starts
),

run_positions as (
    select
        *,
        row_number() over (partition by run_number order by dt) as day_in_run,
        count(*) over (partition by run_number) as days_in_run,
        max(run_number) over () as last_run_number,
        median(selected_volume) over (partition by run_number) as run_median_volume
    from runs
),

classified as (
    select
        dt,
        selected_symbol,
        selected_volume,
        outright_volume,
        dominance,
        run_number,
        run_median_volume,
        (run_number > 1 and day_in_run <= {{ var("selection_roll_trim_days") }})
        or (
            run_number < last_run_number
            and days_in_run - day_in_run < {{ var("selection_roll_trim_days") }}
        ) as is_near_roll,
        selected_volume
        < {{ var("selection_liquidity_floor") }} * run_median_volume as is_below_liquidity_floor
    from run_positions
),

final as (
    select
        session_days.dt,
        classified.selected_symbol,
        classified.run_number,
        classified.run_median_volume,
        classified.dominance,
        coalesce(classified.selected_volume, 0) as selected_volume,
        coalesce(classified.outright_volume, 0) as outright_volume,
        coalesce(
            classified.dominance < {{ var("selection_dominance_floor") }}, false
        ) as is_low_dominance,
        case
            when classified.dt is null then 'no_session_volume'
            when classified.is_near_roll then 'roll_boundary'
            when classified.is_below_liquidity_floor then 'below_liquidity_floor'
        end as exclusion_reason
    from session_days
    left join classified on session_days.dt = classified.dt
),

typed as (
    select
        dt,
        selected_symbol,
        is_low_dominance,
        exclusion_reason,
        cast(selected_volume as bigint) as selected_volume,
        cast(outright_volume as bigint) as outright_volume,
        cast(dominance as double) as dominance,
        cast(run_number as integer) as run_number,
        cast(run_median_volume as double) as run_median_volume,
        exclusion_reason is null as is_included
    from final
)

select
    dt,
    selected_symbol,
    selected_volume,
    outright_volume,
    dominance,
    is_low_dominance,
    run_number,
    run_median_volume,
    is_included,
    exclusion_reason
from typed
order by dt
