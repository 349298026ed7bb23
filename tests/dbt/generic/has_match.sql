{% test has_match(model, to, columns) %}
{#- Rows of the model whose key (the given columns) has no row in `to`: a composite
    relationships test. When the model's rows are filtered (a build tests the dates it
    computed; `model` is then a subquery) and `dt` is in the key, `to` is read on the model's
    dates only, named as constants: DuckDB then opens only those dates' files and row groups
    of `to` instead of hashing its whole history. -#}
{%- if model is string and 'dt' in columns and execute %}
    {%- set model_dates = run_query('select distinct dt from ' ~ model ~ ' order by dt').columns[0].values() %}
select child.*
from (select * from {{ model }}) as child
anti join (
    select * from {{ to }}
    where {% if model_dates %}dt in ({{ date_literals(model_dates) }}){% else %}false{% endif %}
) as parent
    using ({{ columns | join(", ") }})
{%- else %}
select child.*
from (select * from {{ model }}) as child
anti join {{ to }} as parent
    using ({{ columns | join(", ") }})
{%- endif %}
{% endtest %}
