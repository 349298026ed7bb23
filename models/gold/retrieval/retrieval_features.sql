-- The trigger-vector features retrieval compares, per level: the catalog's features in the
-- blocks listed by `retrieval_blocks`, in catalog order.
with chosen as (
    select
        level_id,
        feature_index,
        feature_name,
        block,
        base_feature,
        feature_scope,
        feature_family
    from {{ ref('trigger_feature_catalog') }}
    where block in (
        {%- for block in var('retrieval_blocks') %}
        '{{ block }}'{{ "," if not loop.last }}
        {%- endfor %}
    )
)

select
    level_id,
    cast(row_number() over (partition by level_id order by feature_index) as integer)
        as retrieval_index,
    feature_index,
    feature_name,
    block,
    base_feature,
    feature_scope,
    feature_family
from chosen
