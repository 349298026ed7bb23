{% test has_match(model, to, columns) %}
{#- Rows of the model whose key (the given columns) has no row in `to`: a composite
    relationships test. A key with `dt` reads `to` on the model's dates only: a build that
    tests its new dates does not hash the parent's history. -#}
with child as (
    select * from {{ model }}
)

select child.*
from child
anti join (
    select * from {{ to }}
    {%- if 'dt' in columns %}
    where dt in (select distinct child.dt from child)
    {%- endif %}
) as parent
    using ({{ columns | join(", ") }})
{% endtest %}
