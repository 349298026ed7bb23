-- Each model's reliability bins hold exactly the triggers model_comparison evaluated.
with binned as (
    select
        model,
        level_id,
        approach_dir,
        sum(n) as n
    from {{ ref('model_reliability') }}
    group by model, level_id, approach_dir
)

select
    model_comparison.model,
    model_comparison.level_id,
    model_comparison.approach_dir,
    model_comparison.n,
    binned.n as binned_n
from {{ ref('model_comparison') }} as model_comparison
left join binned
    on
        model_comparison.model = binned.model
        and model_comparison.level_id = binned.level_id
        and model_comparison.approach_dir = binned.approach_dir
where binned.n is distinct from model_comparison.n
