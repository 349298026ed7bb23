{% test expression_is_true(model, expression) %}
{#- Rows for which a boolean SQL expression does not hold (combine with `config: where`). -#}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
