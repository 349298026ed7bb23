-- Reliability of the walk-forward P(BREAK): predicted against observed, bin by bin.
select
    level_id,
    approach_dir,
    bin,
    p_low,
    p_high,
    n,
    mean_p_break,
    break_rate
from {{ ref('retrieval_walk_forward_reliability') }}
