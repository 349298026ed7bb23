-- Every trigger's walk-forward P(BREAK) under each model, contracted.
select
    trigger_id,
    dt,
    level_id,
    approach_dir,
    model,
    p_break
from {{ ref('model_walk_forward_scores') }}
