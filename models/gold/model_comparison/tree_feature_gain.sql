-- What the walk-forward boosted trees split on: each retrieval feature's mean share of their
-- split gain over the folds whose trees split, with the feature's name, block and family.
-- Every level and direction of retrieval_vectors has its rows (0 and 0 fits when no fold's
-- trees split).
with fold_shares as (
    select
        level_id,
        approach_dir,
        retrieval_index,
        -- in fold order: the same bits whatever the threads
        list(gain_share order by dt) filter (where gain_share is not null) as split_fold_shares
    from {{ ref('model_walk_forward_tree_gain') }}
    group by level_id, approach_dir, retrieval_index
),

trigger_groups as (
    select distinct
        level_id,
        approach_dir
    from {{ ref('retrieval_vectors') }}
)

select
    trigger_groups.level_id,
    trigger_groups.approach_dir,
    features.retrieval_index,
    features.feature_name,
    features.block,
    features.feature_family,
    coalesce(list_avg(fold_shares.split_fold_shares), 0) as gain_share,
    coalesce(len(fold_shares.split_fold_shares), 0) as fits
from trigger_groups
inner join {{ ref('retrieval_features') }} as features
    on trigger_groups.level_id = features.level_id
left join fold_shares
    on
        trigger_groups.level_id = fold_shares.level_id
        and trigger_groups.approach_dir = fold_shares.approach_dir
        and features.retrieval_index = fold_shares.retrieval_index
