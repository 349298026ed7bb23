-- The trees' split gain summed by feature family and by block, per level and direction: which
-- kind of information and which time scale the trees use.
with grouped as (
    {%- for grouped_by in ['feature_family', 'block'] %}
    select
        level_id,
        approach_dir,
        '{{ grouped_by }}' as grouped_by,
        {{ grouped_by }} as feature_group,
        count(*) as features,
        {{ ordered_sum('gain_share', 'retrieval_index') }} as gain_share,
        max(fits) as fits
    from {{ ref('tree_feature_gain') }}
    group by level_id, approach_dir, {{ grouped_by }}
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
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
