-- Each trigger's vector as retrieval compares it: the trigger_vectors positions of
-- retrieval_features, in retrieval_index order.
with positions as (
    select
        level_id,
        list(feature_index order by retrieval_index) as feature_indexes
    from {{ ref('retrieval_features') }}
    group by level_id
),

selected as (
    select
        vectors.trigger_id,
        vectors.dt,
        vectors.ts,
        vectors.level_id,
        vectors.approach_dir,
        vectors.minutes_since_open,
        vectors.window_valid,
        list_select(vectors.feature_vector, positions.feature_indexes) as feature_vector
    from {{ ref('trigger_vectors') }} as vectors
    inner join positions
        on vectors.level_id = positions.level_id
)

-- a trigger on a book that was not valid, or with a compared feature unknown (no gamma
-- exposure known, say), is not compared: a made-up value would pull in false neighbours
select
    trigger_id,
    dt,
    ts,
    level_id,
    approach_dir,
    minutes_since_open,
    feature_vector
from selected
where window_valid and list_count(feature_vector) = len(feature_vector)
