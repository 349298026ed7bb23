{% macro duckdb__get_where_subquery(relation) -%}
    {#- The rows a generic test reads: dbt's default (the test's `where` config), and in
        `dbt build` only the dates the build computed of a day_partitioned model (or of an
        engine table recording its day build state), or of such models a view reads: a date's
        rows are checked when they are written, so a new day costs its own tests, not the
        history's. Every generic test here checks
        rows within a date (keys, matches, ranges), so this checks what a test of every date
        would, on the rows that are new. `dbt test` and `spymaster audit` read every date.
        One macro: a generic test's context holds only the macros dbt sees it call. -#}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {#- rows_match_partitions counts every partition from Parquet metadata (cheap by
        construction): it also finds a partition no longer read on a date left unchanged -#}
    {%- if execute and flags.WHICH == 'build' and not var('test_all_dates', false)
        and relation is not string
        and model.test_metadata.name not in ['rows_match_partitions'] -%}
        {%- set walk = namespace(frontier=[], found=[]) -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and node.alias == relation.identifier
                and node.schema == relation.schema -%}
                {%- do walk.frontier.append(node) -%}
            {%- endif -%}
        {%- endfor -%}
        {#- through views (a few levels) to the models with a day build state they read -#}
        {%- for depth in range(5) -%}
            {%- set parents = [] -%}
            {%- for node in walk.frontier -%}
                {%- if node.config.materialized == 'day_partitioned'
                    or 'record_day_build_state' in node.config.get('post-hook', [])
                        | map(attribute='sql') | join -%}
                    {%- do walk.found.append(node) -%}
                {%- elif node.config.materialized == 'view' -%}
                    {%- for parent_id in node.depends_on.nodes if parent_id in graph.nodes -%}
                        {%- do parents.append(graph.nodes[parent_id]) -%}
                    {%- endfor -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set walk.frontier = parents -%}
        {%- endfor -%}
        {%- if walk.found -%}
            {%- set built = [] -%}
            {%- for node in walk.found -%}
                {%- do built.append(
                    'select dt from ' ~ node.database ~ '.build_state.' ~ node.alias
                    ~ "__dates where invocation_id = '" ~ invocation_id ~ "'"
                ) -%}
            {%- endfor -%}
            {%- do conditions.append('dt in (' ~ built | join(' union ') ~ ')') -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
