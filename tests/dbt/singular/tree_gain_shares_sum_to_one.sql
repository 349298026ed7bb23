-- Per level, direction and grouped_by, the trees' gain shares sum to 1 when a fit split at all,
-- to 0 when none did.
select
    level_id,
    approach_dir,
    grouped_by,
    sum(gain_share) as gain_share
from {{ ref('tree_gain_by_feature_group') }}
group by level_id, approach_dir, grouped_by
having abs(sum(gain_share) - case when max(fits) > 0 then 1 else 0 end) > 1e-9
