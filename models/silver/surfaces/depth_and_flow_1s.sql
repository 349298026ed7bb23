{{ config(materialized='view') }}

-- Per second, side and price near spot: resting depth and what changed it.
with engine_rows as (
    select
        symbol,
        dt,
        window_start,
        side,
        price,
        rel_ticks,
        depth_qty_start,
        depth_qty_end,
        depth_qty_rest,
        add_qty,
        pull_qty,
        pull_qty_rest,
        fill_qty,
        reprice_in_qty,
        reprice_out_away_qty,
        reprice_out_toward_qty,
        window_valid
    from {{ ref('engine_depth_and_flow_1s') }}
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
    side,
    price,
    rel_ticks,
    depth_qty_start,
    depth_qty_end,
    depth_qty_rest,
    add_qty,
    pull_qty,
    pull_qty_rest,
    fill_qty,
    reprice_in_qty,
    reprice_out_away_qty,
    reprice_out_toward_qty,
    window_valid
from final
