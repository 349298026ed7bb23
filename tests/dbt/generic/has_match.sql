{% test has_match(model, to, columns) %}
{#- Rows of the model whose key (the given columns) has no row in `to`: a composite
    relationships test. When the model's rows are filtered (a build tests the dates it
    computed; `model` is then a subquery) and `dt` is in the key, `to` is read on those dates
    only, not hashed whole; an unfiltered model is anti-joined to `to` directly (reading its
    dates first would scan the model twice). -#}
{%- if model is string and 'dt' in columns %}
with child as (
    select * from {{ model }}
)

select child.*
from child
anti join (
    select * from {{ to }}
    where dt in (select distinct child.dt from child)
) as parent
    using ({{ columns | join(", ") }})
{%- else %}
select child.*
from (select * from {{ model }}) as child
anti join {{ to }} as parent
    using ({{ columns | join(", ") }})
{%- endif %}
{% endtest %}
