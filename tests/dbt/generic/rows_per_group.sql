{% test rows_per_group(model, group_by, expected) %}
{#- Groups that do not have exactly `expected` rows. -#}
select
    {{ group_by | join(", ") }},
    count(*) as row_count
from {{ model }}
group by {{ group_by | join(", ") }}
having count(*) <> {{ expected }}
{% endtest %}
