{% macro calibrated_physics_metrics() -%}
    {#- The vacuum_surface_1s columns that physics_norm_calibration calibrates (their names are
        the metric_name values). -#}
    {{- return([
        'pull_add_log',
        'pull_intensity_rest_log1p',
        'erosion_ratio_log1p',
        'pull_add_log_d2',
        'wall_strength_log',
    ]) -}}
{%- endmacro %}
