-- Every retrieval vector has one value per retrieval feature of its level, equal to the
-- trigger vector's value at that feature's catalog position.
with features as (
    select
        level_id,
        retrieval_index,
        feature_index,
        count(*) over (partition by level_id) as feature_count
    from {{ ref('retrieval_features') }}
),

checked as (
    select
        retrieval.trigger_id,
        features.retrieval_index,
        features.feature_count,
        len(retrieval.feature_vector) as vector_length,
        retrieval.feature_vector[features.retrieval_index] as retrieval_value,
        vectors.feature_vector[features.feature_index] as catalog_value
    from {{ ref('retrieval_vectors') }} as retrieval
    inner join {{ ref('trigger_vectors') }} as vectors
        on retrieval.trigger_id = vectors.trigger_id
    inner join features
        on retrieval.level_id = features.level_id
)

select *
from checked
where
    vector_length <> feature_count
    or retrieval_value is distinct from catalog_value
