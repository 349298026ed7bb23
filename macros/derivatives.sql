{% macro consecutive_difference(column, partition_by, order_by='window_start', spacing="interval 1 second") -%}
    {#- x(t) - x(t - spacing) for the same partition (price and side, or level and side);
        zero where the previous window is missing. -#}
    {%- set window -%}
        partition by {{ partition_by | join(", ") }} order by {{ order_by }}
    {%- endset -%}
    case
        when lag({{ order_by }}) over ({{ window }}) = {{ order_by }} - {{ spacing }}
            then {{ column }} - lag({{ column }}) over ({{ window }})
        else 0
    end
{%- endmacro %}


{% macro derivative_ctes(source, columns, partition_by, prefix, order_by='window_start', spacing="interval 1 second") -%}
    {#- Three CTEs adding d1, d2 and d3 of each column (successive differences over consecutive
        windows, zero where the previous window is missing); the last is `<prefix>_d3`. -#}
{{ prefix }}_d1 as (
    select
        *,
        {%- for column in columns %}
        {{ consecutive_difference(column, partition_by, order_by, spacing) }} as {{ column }}_d1
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ source }}
),

{{ prefix }}_d2 as (
    select
        *,
        {%- for column in columns %}
        {{ consecutive_difference(column ~ '_d1', partition_by, order_by, spacing) }} as {{ column }}_d2
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ prefix }}_d1
),

{{ prefix }}_d3 as (
    select
        *,
        {%- for column in columns %}
        {{ consecutive_difference(column ~ '_d2', partition_by, order_by, spacing) }} as {{ column }}_d3
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ prefix }}_d2
)
{%- endmacro %}
