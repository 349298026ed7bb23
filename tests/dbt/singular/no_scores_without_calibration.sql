-- A session without calibration (no earlier sessions) has NULL normalised scores, never
-- scores computed from its own data. Joined to those sessions' dates, not filtered by them:
-- DuckDB then reads only their rows of the history.
with uncalibrated_dates as (
    select vacuum_surface_1s.dt
    from {{ ref('vacuum_surface_1s') }} as vacuum_surface_1s
    except
    select physics_norm_calibration.dt
    from {{ ref('physics_norm_calibration') }} as physics_norm_calibration
)

select
    vacuum_score_1s.dt,
    vacuum_score_1s.window_start,
    vacuum_score_1s.side,
    vacuum_score_1s.price
from {{ ref('vacuum_score_1s') }} as vacuum_score_1s
inner join uncalibrated_dates on vacuum_score_1s.dt = uncalibrated_dates.dt
where
    vacuum_score_1s.vacuum_score is not null
    or vacuum_score_1s.wall_strength_log_norm is not null
