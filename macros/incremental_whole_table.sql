{% macro get_incremental_whole_table_sql(arg_dict) -%}
    {#- For incremental models that return their whole table: the work is incremental (the
        model reuses what its previous table holds), the table small enough to rewrite. The
        previous rows are replaced in the build's transaction; a row the model no longer
        returns (a vanished session's) is gone. -#}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute="name")) -%}
    delete from {{ arg_dict['target_relation'] }};

    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    (
        select {{ columns }}
        from {{ arg_dict['temp_relation'] }}
    );

    drop table if exists {{ arg_dict['temp_relation'] }}
{%- endmacro %}
