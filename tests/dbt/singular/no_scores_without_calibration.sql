-- A session without calibration (no earlier sessions) has NULL normalised scores, never
-- scores computed from its own data.
select
    vacuum_score_1s.dt,
    vacuum_score_1s.window_start,
    vacuum_score_1s.side,
    vacuum_score_1s.price
from {{ ref('vacuum_score_1s') }} as vacuum_score_1s
where
    vacuum_score_1s.dt not in (
        select physics_norm_calibration.dt
        from {{ ref('physics_norm_calibration') }} as physics_norm_calibration
    )
    and (
        vacuum_score_1s.vacuum_score is not null
        or vacuum_score_1s.wall_strength_log_norm is not null
    )
