{% test has_match(model, to, columns) %}
{#- Rows of the model whose key (the given columns) has no row in `to`: a composite
    relationships test. -#}
select child.*
from (select * from {{ model }}) as child
anti join {{ to }} as parent
    using ({{ columns | join(", ") }})
{% endtest %}
