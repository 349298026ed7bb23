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
