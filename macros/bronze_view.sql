{% macro bronze_view(table_name) -%}
    {#-
        The contracted columns of a bronze Parquet table, read through its source.
        A table that has not been landed yet (no options data, say) is zero rows of the
        same columns and types, so every layer builds on any lake.
    -#}
    {%- set columns = model.columns.values() | list -%}
    {%- if execute and not bronze_table_landed(table_name) %}
select
    {%- for column in columns %}
    cast(null as {{ column.data_type }}) as {{ column.name }}
    {{- "," if not loop.last }}
    {%- endfor %}
where false
    {%- else %}
select
    {%- for column in columns %}
    {{ column.name }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ source('bronze', table_name) }}
    {%- endif %}
{%- endmacro %}


{% macro bronze_table_landed(table_name) -%}
    {#- a partition has landed when its manifest has (spymaster.lake.Lake.is_landed) -#}
    {%- set pattern = lake_dir() ~ '/bronze/' ~ table_name ~ '/*/*/_manifest.json' -%}
    {%- set files = run_query("select count(*) from glob('" ~ pattern ~ "')") -%}
    {{- return(files.columns[0].values()[0] > 0) -}}
{%- endmacro %}
