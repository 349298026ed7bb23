-- The trees' split gain summed by feature family and by block, per level and direction: which
-- kind of information and which time scale the trees use.
with by_family as (
    select
        level_id,
        approach_dir,
        'feature_family' as grouped_by,
        feature_family as feature_group,
        count(*) as features,
        {{ ordered_sum('gain_share', 'retrieval_index') }} as gain_share,
        max(fits) as fits
    from {{ ref('tree_feature_gain') }}
    group by level_id, approach_dir, feature_family
),

by_block as (
    select
        level_id,
        approach_dir,
        'block' as grouped_by,
        block as feature_group,
        count(*) as features,
        {{ ordered_sum('gain_share', 'retrieval_index') }} as gain_share,
        max(fits) as fits
    from {{ ref('tree_feature_gain') }}
    group by level_id, approach_dir, block
),

grouped as (
    select * from by_family
    union all
    select * from by_block
)

select
    level_id,
    approach_dir,
    grouped_by,
    feature_group,
    features,
    gain_share,
    fits,
    gain_share / features as gain_share_per_feature
from grouped
