-- Each trigger's vector as retrieval compares it: the trigger_vectors positions of
-- retrieval_features, in retrieval_index order.
with positions as (
    select
        level_id,
        list(feature_index order by retrieval_index) as feature_indexes
    from {{ ref('retrieval_features') }}
    group by level_id
)

select
    vectors.trigger_id,
    vectors.dt,
    vectors.ts,
    vectors.level_id,
    vectors.approach_dir,
    vectors.minutes_since_open,
    list_select(vectors.feature_vector, positions.feature_indexes) as feature_vector
from {{ ref('trigger_vectors') }} as vectors
inner join positions
    on vectors.level_id = positions.level_id
