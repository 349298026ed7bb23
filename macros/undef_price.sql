{% macro undef_price() -%}
    {#- Databento's UNDEF_PRICE (2^63 - 1): a price field that holds no price. -#}
    9223372036854775807
{%- endmacro %}
