{% macro duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
    {#- dbt-duckdb deletes a composite key with `using <new rows>`: every old row of a rebuilt
        contract-day joins every new row of it, quadratic in the day's rows (minutes for one
        demo day). A semi join on the distinct keys deletes the same rows.
        The new rows' relation is meant to be temporary, but dbt-duckdb's Python writer
        (py_write_table) makes it an ordinary table of the default schema that nothing drops:
        every build would leave one behind, holding the rows it inserted. Dropped once merged. -#}
    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- if keys %}
    delete from {{ target }}
    where ({{ keys | join(", ") }}) in (
        select distinct {{ keys | join(", ") }}
        from {{ source }}
    )
    {%- for predicate in incremental_predicates or [] %}
        and {{ predicate }}
    {%- endfor %};
    {%- endif %}

    insert into {{ target }} ({{ dest_cols_csv }})
    (
        select {{ dest_cols_csv }}
        from {{ source }}
    );

    drop table if exists {{ source }}
{%- endmacro %}
