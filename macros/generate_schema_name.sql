{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Layers are schemas named exactly bronze / silver / gold, not <target>_<layer>. -#}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
