-- Walk-forward retrieval of similar setups for every trigger, contracted.
select
    trigger_id,
    dt,
    level_id,
    approach_dir,
    neighbour_count,
    p_break,
    p_reject,
    p_chop,
    similarity_mean,
    similarity_std,
    similarity_max,
    similarity_min,
    training_sessions,
    training_triggers,
    base_rate_prior,
    time_of_day_rate_prior,
    neighbour_trigger_ids,
    neighbour_similarities
from {{ ref('retrieval_trigger_signals') }}
