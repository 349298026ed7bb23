-- What the walk-forward boosted trees split on: each retrieval feature's mean share of their
-- split gain, with the feature's name, block and family.
select
    gain.level_id,
    gain.approach_dir,
    gain.retrieval_index,
    features.feature_name,
    features.block,
    features.feature_family,
    gain.gain_share,
    gain.fits
from {{ ref('model_walk_forward_tree_gain') }} as gain
inner join {{ ref('retrieval_features') }} as features
    on
        gain.level_id = features.level_id
        and gain.retrieval_index = features.retrieval_index
