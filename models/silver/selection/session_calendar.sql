-- UTC bounds of each session date's exchange-time windows (daylight saving included): the
-- research window and the seconds the 1-second surfaces cover.
with session_days as (
    select dt
    from {{ ref('contract_day_selection') }}
),

final as (
    select
        dt,
        {{ exchange_time_utc('dt', var('session_window_start')) }} as session_window_start,
        {{ exchange_time_utc('dt', var('session_window_end')) }} as session_window_end,
        {{ exchange_time_utc('dt', var('surface_window_start')) }} as surface_window_start,
        {{ exchange_time_utc('dt', var('surface_window_end')) }} as surface_window_end
    from session_days
)

select
    dt,
    session_window_start,
    session_window_end,
    surface_window_start,
    surface_window_end
from final
