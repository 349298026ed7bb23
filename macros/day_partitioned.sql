{#-
    The day_partitioned materialization: a table built one session date (`dt`) at a time.

    Each date the model covers gets a build fingerprint: the MD5 of the model's compiled SQL
    (its code, the vars and macros it renders) and of what it reads for that date (the
    fingerprint of each input's date, an input without dates as a whole). A build recomputes
    exactly the dates whose fingerprint changed, in batches of `build_days_per_batch` dates, and
    deletes the rows of dates no longer covered; `--full-refresh`, a new table, or every date
    changed rebuilds the table whole, batch by batch. The fingerprints live in
    build_state.<model>__dates (dt, build_fingerprint, invocation_id: the run that built the
    date).

    The model reads its dated inputs through `in_build_days()`, so a batch's query opens only
    its own dates' rows; outside a build (dbt show, live) the filter is true for every row.

    Config:
      - build_dates: 'included_sessions' (default: the dates contract_day_selection includes)
        or 'inputs' (every date an input has, for models upstream of the selection);
      - history_sessions: the number of included sessions before each date that the date also
        reads (calibration): their inputs' fingerprints enter the date's, and
        in_build_days(history=true) lets them through.
-#}
{% materialization day_partitioned, adapter='duckdb' %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set backup_relation = make_backup_relation(target_relation, 'table') -%}
    {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
    {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}
    {%- set state_relation = day_build_state_relation(this) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set plan = day_build_plan(compiled_code, state_relation) -%}
    {%- set full_build = should_full_refresh()
        or existing_relation is none
        or not existing_relation.is_table
        or plan.dates | length == plan.changed | length -%}

    {%- if full_build %}
        {% do day_partitioned_insert(intermediate_relation, compiled_code, plan.dates, create=true) %}
        {% if existing_relation is not none %}
            {{ adapter.rename_relation(existing_relation, backup_relation) }}
        {% endif %}
        {{ adapter.rename_relation(intermediate_relation, target_relation) }}
        {%- set built_dates = plan.dates -%}
    {%- else %}
        {%- set removed = plan.changed + plan.vanished -%}
        {% call statement('day_delete') -%}
            {%- if removed %}
            delete from {{ target_relation }} where dt in ({{ date_literals(removed) }})
            {%- else %}
            select 1
            {%- endif %}
        {%- endcall %}
        {% do day_partitioned_insert(target_relation, compiled_code, plan.changed) %}
        {%- set built_dates = plan.changed -%}
    {%- endif %}

    {% do day_build_state_write(state_relation, plan, built_dates) %}
    {{ log(
        model.name ~ ': ' ~ built_dates | length ~ ' of ' ~ plan.dates | length ~ ' dates built'
        ~ (' (the whole table)' if full_build else '')
        ~ (', ' ~ plan.vanished | length ~ ' removed' if plan.vanished else ''),
        info=True
    ) }}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ drop_relation_if_exists(backup_relation) }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro in_build_days(column='dt', history=false) -%}
    {#- True for the rows of the dates a day_partitioned build is computing (with
        history=true, also the included sessions each of them reads before it); true for
        every row outside such a build. DuckDB folds the variable into a constant, so a scan
        of Parquet opens only those dates' files and a table skips other dates' row groups. -#}
    {%- set variable = day_build_variable(history) -%}
    (
        getvariable('{{ variable }}') is null
        or list_contains(getvariable('{{ variable }}'), {{ column }})
    )
{%- endmacro %}


{% macro day_build_variable(history=false) -%}
    {{- return(model.name ~ ('__input_days' if history else '__build_days')) -}}
{%- endmacro %}


{% macro day_build_state_relation(relation) -%}
    {#- build_state.<model>__dates: a name no table of the other schemas has (tools find a
        warehouse table by its name) -#}
    {{- return(api.Relation.create(
        database=relation.database,
        schema='build_state',
        identifier=relation.identifier ~ '__dates',
        type='table'
    )) -}}
{%- endmacro %}


{% macro date_literals(dates) -%}
    {%- for day in dates %}DATE '{{ day }}'{{ ", " if not loop.last }}{% endfor -%}
{%- endmacro %}


{% macro day_partitioned_insert(relation, compiled_code, dates, create=false) -%}
    {#- The model's rows of `dates`, a batch of dates per query, each batch staged in a
        temporary table and appended when it holds rows (with create=true, the first batch
        with rows creates `relation`, under the model's contract). Staged because DuckDB
        (2.0.0) keeps a table's statistics of an empty first append in a transaction: after
        the commit, a filtered scan of the rows appended next finds none. -#}
    {%- set batch_size = var('build_days_per_batch') -%}
    {%- set history_sessions = config.get('history_sessions', 0) -%}
    {%- set state = {'created': not create} -%}
    {%- for batch in dates | batch(batch_size) %}
        {% call statement('day_batch') -%}
            set variable {{ day_build_variable() }} = [{{ date_literals(batch) }}]::date[];
            {%- if history_sessions > 0 %}
            set variable {{ day_build_variable(history=true) }} = (
                select list(distinct history.dt order by history.dt)
                from {{ included_sessions_sql() }} as built
                inner join {{ included_sessions_sql() }} as history
                    on history.session_number between built.session_number - {{ history_sessions }}
                    and built.session_number
                where built.dt in ({{ date_literals(batch) }})
            );
            {%- endif %}
            create or replace temporary table day_batch_rows as
            select * from ({{ compiled_code }}) as day_rows
            where dt in ({{ date_literals(batch) }});
            reset variable {{ day_build_variable() }};
            {%- if history_sessions > 0 %}
            reset variable {{ day_build_variable(history=true) }};
            {%- endif %}
        {%- endcall %}
        {%- set rows = run_query('select count(*) from day_batch_rows').columns[0].values()[0] -%}
        {%- if rows > 0 and not state.created %}
            {% call statement('day_batch_create') -%}
                {{ create_table_as(False, relation, 'select * from day_batch_rows') }}
            {%- endcall %}
            {%- do state.update({'created': true}) -%}
        {%- elif rows > 0 %}
            {% call statement('day_batch_insert') -%}
                insert into {{ relation }} by name select * from day_batch_rows
            {%- endcall %}
        {%- endif %}
    {%- endfor %}
    {%- if not state.created %}
        {#- no rows at all: the empty table, and no append follows -#}
        {% call statement('day_batch_create') -%}
            {{ create_table_as(
                False, relation, 'select * from (' ~ compiled_code ~ ') as day_rows where false'
            ) }}
        {%- endcall %}
    {%- endif %}
    {% call statement('day_batch_drop') -%}
        drop table if exists day_batch_rows
    {%- endcall %}
{%- endmacro %}


{% macro included_sessions_sql() -%}
    {#- The included session dates, numbered in date order. -#}
    {%- set selection = graph.nodes['model.spymaster.contract_day_selection'] -%}
    (
        select
            dt,
            row_number() over (order by dt) as session_number
        from (
            select distinct dt
            from {{ selection.database }}.{{ selection.schema }}.{{ selection.alias }}
            where is_included
        )
    )
{%- endmacro %}


{% macro day_build_plan(compiled_code, state_relation) -%}
    {#- Every date the model covers with its build fingerprint; the dates whose fingerprint
        differs from the stored one (`changed`) and the stored dates no longer covered
        (`vanished`). -#}
    {%- set history_sessions = config.get('history_sessions', 0) -%}
    {%- set build_dates = config.get('build_dates', 'included_sessions') -%}
    {%- if build_dates not in ['included_sessions', 'inputs'] -%}
        {{ exceptions.raise_compiler_error(
            model.name ~ ": build_dates must be 'included_sessions' or 'inputs', not '"
            ~ build_dates ~ "'"
        ) }}
    {%- endif -%}
    {%- set state_exists = load_cached_relation(state_relation) is not none -%}
    {%- set plan_sql %}
        with inputs as (
            {{ day_input_fingerprints(model.depends_on.nodes) }}
        ),

        sessions as (
            {%- if build_dates == 'included_sessions' %}
            select dt, session_number from {{ included_sessions_sql() }}
            {%- else %}
            select dt, row_number() over (order by dt) as session_number
            from (select distinct dt from inputs where dt is not null)
            {%- endif %}
        ),

        date_inputs as (
            select
                sessions.dt,
                inputs.input_name,
                inputs.input_fingerprint
            from sessions
            inner join inputs on inputs.dt = sessions.dt or inputs.dt is null
            {%- if history_sessions > 0 %}
            union all
            select
                sessions.dt,
                'history ' || strftime(history.dt, '%Y-%m-%d') || ' ' || inputs.input_name,
                inputs.input_fingerprint
            from sessions
            inner join sessions as history
                on history.session_number between sessions.session_number - {{ history_sessions }}
                and sessions.session_number - 1
            inner join inputs on inputs.dt = history.dt
            {%- endif %}
        ),

        planned as (
            select
                sessions.dt,
                md5(
                    '{{ local_md5(compiled_code) }}'
                    || coalesce(string_agg(
                        date_inputs.input_name || '=' || date_inputs.input_fingerprint, ';'
                        order by date_inputs.input_name, date_inputs.input_fingerprint
                    ), '')
                ) as build_fingerprint
            from sessions
            left join date_inputs on sessions.dt = date_inputs.dt
            group by sessions.dt
        ),

        stored as (
            {%- if state_exists %}
            select dt, build_fingerprint, invocation_id from {{ state_relation }}
            {%- else %}
            select cast(null as date) as dt, cast(null as varchar) as build_fingerprint,
                cast(null as varchar) as invocation_id
            where false
            {%- endif %}
        )

        select
            coalesce(planned.dt, stored.dt) as dt,
            planned.build_fingerprint,
            stored.build_fingerprint as stored_fingerprint,
            stored.invocation_id
        from planned
        full outer join stored on planned.dt = stored.dt
        order by 1
    {%- endset %}
    {%- set rows = run_query(plan_sql).rows -%}
    {%- set plan = {'dates': [], 'changed': [], 'vanished': [], 'fingerprints': {}, 'invocations': {}} -%}
    {%- for row in rows -%}
        {%- set day = row[0] | string -%}
        {%- if row[1] is none -%}
            {%- do plan.vanished.append(day) -%}
        {%- else -%}
            {%- do plan.dates.append(day) -%}
            {%- do plan.fingerprints.update({day: row[1]}) -%}
            {%- do plan.invocations.update({day: row[3]}) -%}
            {%- if row[1] != row[2] -%}
                {%- do plan.changed.append(day) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(plan) }}
{%- endmacro %}


{% macro day_build_state_write(state_relation, plan, built_dates) -%}
    {#- The fingerprint of every covered date, with the run that built it (the model's main
        statement: it runs on every build). -#}
    {% call statement('main') -%}
        create schema if not exists {{ state_relation.database }}.{{ state_relation.schema }};
        create or replace table {{ state_relation }} (
            dt date not null primary key,
            build_fingerprint varchar not null,
            invocation_id varchar not null
        );
        {%- for batch in plan.dates | batch(500) %}
        insert into {{ state_relation }} values
            {%- for day in batch %}
            (
                DATE '{{ day }}',
                '{{ plan.fingerprints[day] }}',
                '{{ invocation_id if day in built_dates else plan.invocations[day] }}'
            ){{ "," if not loop.last }}
            {%- endfor %};
        {%- endfor %}
    {%- endcall %}
{%- endmacro %}


{% macro day_input_fingerprints(node_ids) -%}
    {#- (input_name, dt, input_fingerprint) of each input: a day_partitioned model's stored
        fingerprints; a bronze table's partition files (named by their source's hash); a table
        with dates, per date, the columns its meta.day_fingerprint_columns names, else its
        rows' build_fingerprint when it has one (the engine's), else its rows' content; a seed or a table without dates as a whole (dt NULL). A view is
        read through its own inputs. -#}
    {%- set parts = [] -%}
    {%- for node_id in node_ids | unique | sort -%}
        {%- do parts.append(day_input_fingerprint(node_id)) -%}
    {%- endfor -%}
    {%- if parts %}
    {{ parts | join('\n    union all\n') }}
    {%- else %}
    select cast(null as varchar) as input_name, cast(null as date) as dt,
        cast(null as varchar) as input_fingerprint
    where false
    {%- endif %}
{%- endmacro %}


{% macro day_input_fingerprint(node_id) -%}
    {%- if node_id.startswith('source.') -%}
        {%- set node = graph.sources[node_id] -%}
        {%- set pattern = lake_dir() ~ '/bronze/' ~ node.name ~ '/*/*/_manifest.json' -%}
        {%- if lake_files_exist(pattern) %}
    select
        '{{ node.name }}' as input_name,
        dt,
        md5(string_agg(symbol || '/' || data_file, ';' order by symbol, data_file))
        as input_fingerprint
    from read_json(
        '{{ pattern }}',
        columns = {data_file: 'VARCHAR'},
        hive_partitioning = true,
        hive_types = {'symbol': 'VARCHAR', 'dt': 'DATE'}
    )
    group by dt
        {%- else %}
    select '{{ node.name }}' as input_name, cast(null as date) as dt, 'absent' as input_fingerprint
        {%- endif -%}
    {%- else -%}
        {%- set node = graph.nodes[node_id] -%}
        {%- set materialized = node.config.materialized -%}
        {%- if materialized in ['view', 'ephemeral'] -%}
    {{ day_input_fingerprints(node.depends_on.nodes) }}
        {%- else -%}
            {%- set relation = api.Relation.create(
                database=node.database, schema=node.schema, identifier=node.alias
            ) -%}
            {%- if materialized == 'day_partitioned' %}
    select '{{ node.name }}' as input_name, dt, build_fingerprint as input_fingerprint
    from {{ day_build_state_relation(relation) }}
            {%- else -%}
                {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
                {%- set read_columns = node.config.meta.get('day_fingerprint_columns') -%}
                {%- if read_columns and 'dt' in columns %}
    select
        '{{ node.name }}' as input_name,
        dt,
        md5(string_agg(
            concat_ws('|', {{ read_columns | join(', ') }}), ';'
            order by concat_ws('|', {{ read_columns | join(', ') }})
        )) as input_fingerprint
    from {{ relation }}
    group by dt
                {%- elif 'build_fingerprint' in columns and 'dt' in columns %}
    select
        '{{ node.name }}' as input_name,
        dt,
        md5(string_agg(distinct build_fingerprint, ';' order by build_fingerprint))
        as input_fingerprint
    from {{ relation }}
    group by dt
                {%- elif 'dt' in columns %}
    select
        '{{ node.name }}' as input_name,
        dt,
        md5(string_agg(cast(row_values as varchar), ';' order by cast(row_values as varchar)))
        as input_fingerprint
    from {{ relation }} as row_values
    group by dt
                {%- else %}
    select
        '{{ node.name }}' as input_name,
        cast(null as date) as dt,
        md5(coalesce(
            string_agg(cast(row_values as varchar), ';' order by cast(row_values as varchar)),
            ''
        )) as input_fingerprint
    from {{ relation }} as row_values
                {%- endif -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{% macro record_day_build_state() -%}
    {#- A post-hook for a table with per-partition `build_fingerprint` rows (the engine's): its
        build_state.<model>__dates like a day_partitioned model's, a date's fingerprint over its
        partitions, with the run that last changed it (every date on --full-refresh), so a
        build's tests read the dates it changed. -#}
    {%- set state = day_build_state_relation(this) -%}
    {%- set current -%}
        select dt, md5(string_agg(day_partition, ';' order by day_partition)) as build_fingerprint
        from (select distinct dt, symbol || '=' || build_fingerprint as day_partition from {{ this }})
        group by dt
    {%- endset -%}
    create schema if not exists {{ state.database }}.{{ state.schema }};
    create table if not exists {{ state }} (
        dt date not null primary key,
        build_fingerprint varchar not null,
        invocation_id varchar not null
    );
    delete from {{ state }}
    where {{ 'true' if flags.FULL_REFRESH else 'false' }}
        or not exists (
            select 1
            from ({{ current }}) as current_dates
            where
                current_dates.dt = {{ state }}.dt
                and current_dates.build_fingerprint = {{ state }}.build_fingerprint
        );
    insert into {{ state }}
    select dt, build_fingerprint, '{{ invocation_id }}'
    from ({{ current }}) as current_dates
    where dt not in (select dt from {{ state }});
{%- endmacro %}
