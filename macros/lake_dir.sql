{% macro lake_dir() -%}
    {#- The lake folder: $SPYMASTER_LAKE (an absolute path when run by `spymaster` or make),
        else `lake` relative to the project root. -#}
    {{- return(env_var('SPYMASTER_LAKE', 'lake')) -}}
{%- endmacro %}
