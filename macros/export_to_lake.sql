{% macro export_to_lake(relation, folder, file_name) -%}
    {#- Post-hook: copy a finished table to <lake>/<folder>/<file_name> for tools outside
        DuckDB. DuckDB writes a temporary file and renames it, so readers never see half a
        file. -#}
    copy (select * from {{ relation }})
    to '{{ lake_dir() }}/{{ folder }}/{{ file_name }}'
    (format parquet, use_tmp_file true)
{%- endmacro %}
