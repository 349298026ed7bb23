-- Walk-forward evaluation of P(BREAK) per level and approach direction, contracted.
select
    level_id,
    approach_dir,
    n,
    sessions,
    base_rate,
    auc,
    auc_ci_low,
    auc_ci_high,
    brier,
    brier_base_rate,
    brier_time_of_day,
    brier_skill,
    brier_skill_ci_low,
    brier_skill_ci_high,
    log_loss,
    log_loss_base_rate,
    log_loss_time_of_day,
    top_decile_lift,
    top_decile_lift_ci_low,
    top_decile_lift_ci_high
from {{ ref('retrieval_walk_forward_evaluation') }}
