{% macro min_max_normalised(value, q05, q95) -%}
    {#- (x - q05) / (q95 - q05) clamped to [0, 1]; with q95 = q05 a step at q05; NULL without
        calibration. -#}
    case
        when {{ value }} is null or {{ q05 }} is null or {{ q95 }} is null then null
        when {{ q95 }} > {{ q05 }}
            then least(greatest(({{ value }} - {{ q05 }}) / ({{ q95 }} - {{ q05 }}), 0.0), 1.0)
        when {{ value }} > {{ q05 }} then 1.0
        else 0.0
    end
{%- endmacro %}


{% macro ordered_sum(value, order_by, condition=none) -%}
    {#- Sum of doubles in a fixed order (0 over no rows): a parallel `sum` adds in whatever
        order threads finish, so the same inputs could differ in the last bits between builds. -#}
    coalesce(list_sum(list({{ value }} order by {{ order_by }})
        {%- if condition is not none %} filter (where {{ condition }}){% endif %}), 0.0)
{%- endmacro %}


{% macro ordered_sum_at(values, index, order_by) -%}
    {#- ordered_sum of `values[index - 1]`, from one ordered list of the row's `values`: every
        call with the same `values` and `order_by` in a query reads the same aggregate, which
        DuckDB computes once (one sort for all the sums, not one per sum). -#}
    coalesce(list_sum(list_transform(list([{{ values | join(', ') }}] order by {{ order_by }}),
        lambda row: row[{{ index }}])), 0.0)
{%- endmacro %}


{% macro ordered_avgs(values_by_name, order_by) -%}
    {#- Means of doubles in a fixed order (NULL over no values), for the same reason as
        ordered_sum, as columns named by `values_by_name`'s keys. One list of each row's values
        is ordered once (DuckDB computes the identical aggregate once): three ordered lists cost
        physics_bands_1s 9.2 s of CPU over the demo, one 7.3 s. -#}
    {%- set values = values_by_name.values() | join(', ') %}
    {%- for name in values_by_name %}
    list_avg(list_transform(list([{{ values }}] order by {{ order_by }}), lambda row: row[{{ loop.index }}])) as {{ name }}
    {{- "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
