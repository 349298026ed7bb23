{% macro derivative_ctes(source, columns, partition_by, prefix, order_by='window_start', spacing="interval 1 second") -%}
    {#- CTEs adding d1, d2 and d3 of each column: successive differences over consecutive
        windows of the same partition (price and side, or level and side), zero where the
        previous window is missing; the last is `<prefix>_d3`. One window pass reads the
        three previous rows; d2 and d3 are then differences of the d1 and d2 of this row and
        the previous ones, the same arithmetic as differencing d1 and d2 row by row, without
        a sort of the whole table per order. -#}
    {%- set window -%}
        partition by {{ partition_by | join(", ") }} order by {{ order_by }}
    {%- endset -%}
    {%- set helper = "__" ~ prefix ~ "_" -%}
{{ prefix }}_lags as (
    select
        *,
        -- the row k back is the window just before the row k - 1 back
        lag({{ order_by }}) over {{ helper }}window = {{ order_by }} - {{ spacing }} as {{ helper }}consecutive_1,
        lag({{ order_by }}, 2) over {{ helper }}window
        = lag({{ order_by }}) over {{ helper }}window - {{ spacing }} as {{ helper }}consecutive_2,
        lag({{ order_by }}, 3) over {{ helper }}window
        = lag({{ order_by }}, 2) over {{ helper }}window - {{ spacing }} as {{ helper }}consecutive_3,
        {%- for column in columns %}
        {%- set outer_loop = loop %}
        {%- for back in [1, 2, 3] %}
        lag({{ column }}, {{ back }}) over {{ helper }}window as {{ helper }}{{ column }}_{{ back }}
        {{- "," if not (outer_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from {{ source }}
    window {{ helper }}window as ({{ window }})
),

{{ prefix }}_d1 as (
    -- d1 of this row, and of the one and two rows back
    select
        *,
        {%- for column in columns %}
        case
            when {{ helper }}consecutive_1 then {{ column }} - {{ helper }}{{ column }}_1 else 0
        end as {{ column }}_d1,
        case
            when {{ helper }}consecutive_2 then {{ helper }}{{ column }}_1 - {{ helper }}{{ column }}_2 else 0
        end as {{ helper }}{{ column }}_d1_1,
        case
            when {{ helper }}consecutive_3 then {{ helper }}{{ column }}_2 - {{ helper }}{{ column }}_3 else 0
        end as {{ helper }}{{ column }}_d1_2
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ prefix }}_lags
),

{{ prefix }}_d2 as (
    -- d2 of this row and of the row back
    select
        *,
        {%- for column in columns %}
        case
            when {{ helper }}consecutive_1 then {{ column }}_d1 - {{ helper }}{{ column }}_d1_1 else 0
        end as {{ column }}_d2,
        case
            when {{ helper }}consecutive_2 then {{ helper }}{{ column }}_d1_1 - {{ helper }}{{ column }}_d1_2 else 0
        end as {{ helper }}{{ column }}_d2_1
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ prefix }}_d1
),

{{ prefix }}_d3 as (
    select
        * exclude (
            {{ helper }}consecutive_1, {{ helper }}consecutive_2, {{ helper }}consecutive_3,
            {%- for column in columns %}
            {{ helper }}{{ column }}_1, {{ helper }}{{ column }}_2, {{ helper }}{{ column }}_3,
            {{ helper }}{{ column }}_d1_1, {{ helper }}{{ column }}_d1_2, {{ helper }}{{ column }}_d2_1
            {{- "," if not loop.last }}
            {%- endfor %}
        ),
        {%- for column in columns %}
        case
            when {{ helper }}consecutive_1 then {{ column }}_d2 - {{ helper }}{{ column }}_d2_1 else 0
        end as {{ column }}_d3
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ prefix }}_d2
)
{%- endmacro %}
