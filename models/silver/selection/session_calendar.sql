-- UTC bounds of each session date's exchange-time windows (daylight saving included).
with session_days as (
    select dt
    from {{ ref('contract_day_selection') }}
),

final as (
    select
        dt,
        {{ exchange_time_utc('dt', var('session_window_start')) }} as session_window_start,
        {{ exchange_time_utc('dt', var('session_window_end')) }} as session_window_end
    from session_days
)

select
    dt,
    session_window_start,
    session_window_end
from final
