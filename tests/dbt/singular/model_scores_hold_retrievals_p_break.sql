-- model_scores' retrieval rows are trigger_signals' P(BREAK), bit for bit.
select
    model_scores.trigger_id,
    model_scores.p_break,
    trigger_signals.p_break as signal_p_break
from {{ ref('model_scores') }} as model_scores
inner join {{ ref('trigger_signals') }} as trigger_signals
    on model_scores.trigger_id = trigger_signals.trigger_id
where
    model_scores.model = 'retrieval'
    and model_scores.p_break is distinct from trigger_signals.p_break
