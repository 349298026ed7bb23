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


{% macro exact_sum(value) -%}
    {#- The sum of doubles to 2^-64 (each value rounded to that fixed point, below any double's
        precision above 2^-11), exactly: a sum of integers does not depend on the order threads
        add in, so the same rows give the same bits, at the cost of a plain `sum` (ordered_sum's
        sorted list per group costs several times more). NULLs are skipped; 0 over no rows. -#}
    coalesce(
        cast(sum(cast(round(({{ value }}) * 18446744073709551616.0) as hugeint)) as double)
        / 18446744073709551616.0,
        0.0
    )
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
