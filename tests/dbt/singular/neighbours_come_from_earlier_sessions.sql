-- Walk-forward retrieval: every neighbour of a trigger is a trigger of an earlier session,
-- of the same level and approach direction.
select
    signals.trigger_id,
    neighbours.neighbour_id
from {{ ref('trigger_signals') }} as signals
cross join unnest(signals.neighbour_trigger_ids) as neighbours (neighbour_id)
inner join {{ ref('trigger_vectors') }} as neighbour
    on neighbours.neighbour_id = neighbour.trigger_id
where
    neighbour.dt >= signals.dt
    or neighbour.level_id != signals.level_id
    or neighbour.approach_dir != signals.approach_dir
