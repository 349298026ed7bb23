-- Reliability table of every model's walk-forward P(BREAK), contracted.
select
    model,
    level_id,
    approach_dir,
    bin,
    p_low,
    p_high,
    n,
    mean_p_break,
    break_rate
from {{ ref('model_walk_forward_reliability') }}
