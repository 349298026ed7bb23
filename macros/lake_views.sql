{% macro bronze_view(table_name) -%}
    {#-
        The contracted columns of a bronze Parquet table, read through its source.
        A table that has not been landed yet (no options data, say) is zero rows of the
        same columns and types, so every layer builds on any lake.
    -#}
    {%- set columns = model.columns.values() | list -%}
    {%- if execute and not bronze_table_landed(table_name) %}
{{ no_rows(columns) }}
    {%- else %}
select
    {{- contracted_columns(columns) }}
from {{ source('bronze', table_name) }}
    {%- endif %}
{%- endmacro %}


{% macro engine_partitions_view(engine_folder, partitions) -%}
    {#-
        The contracted columns of an engine model's rows kept in the lake
        (<lake>/engine/<engine_folder>/symbol=<s>/dt=<d>/<data_file>), read from the Parquet
        files that `partitions` (the engine model's table: one row per partition, as its
        manifest names it) lists, so a file beside them (a write killed before its manifest, a
        day no longer included) is never read. No partition written yet: zero rows.
    -#}
    {%- set columns = model.columns.values() | list -%}
    {%- set root = lake_dir() ~ '/engine/' ~ engine_folder -%}
    {%- if execute and not lake_files_exist(root ~ '/*/*/*.parquet') %}
{{ no_rows(columns) }}
    {%- else %}
select
    {{- contracted_columns(columns) }}
from read_parquet(
    '{{ root }}/*/*/*.parquet',
    -- the folders' symbol and dt (the rows' own): a day's query opens only that day's file
    hive_partitioning = true,
    hive_types = {'symbol': 'varchar', 'dt': 'date'},
    filename = true
)
where filename in (
    select
        '{{ root }}/symbol=' || symbol || '/dt=' || strftime(dt, '%Y-%m-%d') || '/' || data_file
    from {{ partitions }}
)
    {%- endif %}
{%- endmacro %}


{% macro contracted_columns(columns) -%}
    {%- for column in columns %}
    {{ column.name }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{% macro no_rows(columns) -%}
    {#- zero rows of the contracted columns and types -#}
select
    {%- for column in columns %}
    cast(null as {{ column.data_type }}) as {{ column.name }}
    {{- "," if not loop.last }}
    {%- endfor %}
where false
{%- endmacro %}


{% macro bronze_table_landed(table_name) -%}
    {#- a partition has landed when its manifest has (spymaster.lake.Lake.is_landed) -#}
    {{- return(lake_files_exist(lake_dir() ~ '/bronze/' ~ table_name ~ '/*/*/_manifest.json')) -}}
{%- endmacro %}


{% macro lake_files_exist(pattern) -%}
    {#- whether a glob of the lake matches a file (run when the model runs, not at parse) -#}
    {%- set files = run_query("select count(*) from glob('" ~ pattern ~ "')") -%}
    {{- return(files.columns[0].values()[0] > 0) -}}
{%- endmacro %}
