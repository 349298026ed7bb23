{% macro clustered_outcome_means(session_sums, keys, values) -%}
    {#- Per level kind, outcome and `keys`: each value's mean over the triggers, the sum of its
        sessions' `<value>_sum` over the sum of their `<value>_count`, with a session-clustered
        95% interval from each session's linearised term (the ratio estimator's influence):
        S / (S - 1) * the sum of the squared terms. Beside the outcomes, REJECT minus BREAK,
        whose per-session term is the difference of the two (a session holding one outcome
        only contributes its own), so sessions holding both count once. `session_sums` has a
        row per level kind, outcome, session (`dt`) and keys with the session's `triggers`.
        Sums of doubles are exact (exact_sum): the same rows give the same bits. -#}
    {%- set key_list = keys | join(', ') %}
    {%- set joined_on = ['level_kind'] + keys %}

    with means as (
        select
            level_kind,
            outcome,
            {{ key_list }},
            sum(triggers) as triggers,
            count(*) as sessions,
            {%- for value in values %}
            sum({{ value }}_count) as {{ value }}_count,
            {{ exact_sum(value ~ '_sum') }} / nullif(sum({{ value }}_count), 0) as {{ value }}
            {{- "," if not loop.last }}
            {%- endfor %}
        from {{ session_sums }}
        group by all
    ),

    session_terms as (
        select
            sums.level_kind,
            sums.outcome,
            {%- for key in keys %}
            sums.{{ key }},
            {%- endfor %}
            sums.dt,
            {%- for value in values %}
            (sums.{{ value }}_sum - means.{{ value }} * sums.{{ value }}_count) / means.{{ value }}_count
                as {{ value }}_term
            {{- "," if not loop.last }}
            {%- endfor %}
        from {{ session_sums }} as sums
        inner join means
            on
                sums.outcome = means.outcome
                {%- for key in joined_on %}
                and sums.{{ key }} = means.{{ key }}
                {%- endfor %}
    ),

    by_outcome as (
        select
            means.level_kind,
            means.outcome,
            {%- for key in keys %}
            means.{{ key }},
            {%- endfor %}
            means.triggers,
            means.sessions,
            {%- for value in values %}
            means.{{ value }},
            case
                when means.sessions > 1
                    then sqrt(
                        means.sessions / (means.sessions - 1)
                        * {{ exact_sum('terms.' ~ value ~ '_term ^ 2') }}
                    )
            end as {{ value }}_se
            {{- "," if not loop.last }}
            {%- endfor %}
        from means
        inner join session_terms as terms
            on
                means.outcome = terms.outcome
                {%- for key in joined_on %}
                and means.{{ key }} = terms.{{ key }}
                {%- endfor %}
        group by
            means.level_kind,
            means.outcome,
            {%- for key in keys %}
            means.{{ key }},
            {%- endfor %}
            means.triggers,
            means.sessions,
            {%- for value in values %}
            means.{{ value }}{{ "," if not loop.last }}
            {%- endfor %}
    ),

    difference_terms as (
        select
            {%- for key in joined_on + ['dt'] %}
            coalesce(rejects.{{ key }}, breaks.{{ key }}) as {{ key }},
            {%- endfor %}
            {%- for value in values %}
            coalesce(rejects.{{ value }}_term, 0) - coalesce(breaks.{{ value }}_term, 0) as {{ value }}_term
            {{- "," if not loop.last }}
            {%- endfor %}
        from (select * from session_terms where outcome = 'REJECT') as rejects
        full outer join (select * from session_terms where outcome = 'BREAK') as breaks
            on
                rejects.dt = breaks.dt
                {%- for key in joined_on %}
                and rejects.{{ key }} = breaks.{{ key }}
                {%- endfor %}
    ),

    differences as (
        select
            rejects.level_kind,
            'REJECT_MINUS_BREAK' as outcome,
            {%- for key in keys %}
            rejects.{{ key }},
            {%- endfor %}
            rejects.triggers + breaks.triggers as triggers,
            count(distinct terms.dt) as sessions,
            {%- for value in values %}
            rejects.{{ value }} - breaks.{{ value }} as {{ value }},
            case
                when count(distinct terms.dt) > 1
                    then sqrt(
                        count(distinct terms.dt) / (count(distinct terms.dt) - 1)
                        * {{ exact_sum('terms.' ~ value ~ '_term ^ 2') }}
                    )
            end as {{ value }}_se
            {{- "," if not loop.last }}
            {%- endfor %}
        from (select * from means where outcome = 'REJECT') as rejects
        inner join (select * from means where outcome = 'BREAK') as breaks
            on
                {%- for key in joined_on %}
                {{ "and " if not loop.first }}rejects.{{ key }} = breaks.{{ key }}
                {%- endfor %}
        inner join difference_terms as terms
            on
                {%- for key in joined_on %}
                {{ "and " if not loop.first }}rejects.{{ key }} = terms.{{ key }}
                {%- endfor %}
        group by
            rejects.level_kind,
            {%- for key in keys %}
            rejects.{{ key }},
            {%- endfor %}
            rejects.triggers,
            breaks.triggers,
            {%- for value in values %}
            rejects.{{ value }},
            breaks.{{ value }}{{ "," if not loop.last }}
            {%- endfor %}
    ),

    outcomes_and_differences as (
        select * from by_outcome
        union all by name
        select * from differences
    )

    select
        level_kind,
        outcome,
        {%- for key in keys %}
        {{ key }},
        {%- endfor %}
        cast(triggers as bigint) as triggers,
        sessions,
        {%- for value in values %}
        {{ value }},
        {{ value }} - 1.96 * {{ value }}_se as {{ value }}_ci_low,
        {{ value }} + 1.96 * {{ value }}_se as {{ value }}_ci_high
        {{- "," if not loop.last }}
        {%- endfor %}
    from outcomes_and_differences
{%- endmacro %}


{% macro event_study_measures() -%}
    {#- trigger_event_study's measures, in the order of its columns -#}
    {{ return([
        'depth_qty_end',
        'pull_add_log_rest',
        'reprice_away_share',
        'add_intensity',
        'pull_intensity_rest',
        'fill_intensity',
        'com_distance_ticks',
    ]) }}
{%- endmacro %}


{% macro trigger_seconds(triggers, before, after) -%}
    {#- Each trigger's rows repeated for the seconds `before` to `after` around its time `ts`
        (a whole second: the end of a feature window), with the second's `window_start`, to join
        the book's per-second tables on equal seconds: trigger_composite in 10 s over 59 tiny
        sessions, against 22 s with a join on the time range. -#}
    select
        {{ triggers }}.*,
        steps.second_offset,
        {{ triggers }}.ts + to_seconds(steps.second_offset) as window_start
    from {{ triggers }}
    cross join range(-{{ before }}, {{ after }}) as steps (second_offset)
{%- endmacro %}


{% macro labelled_triggers(build_days=false) -%}
    {#- Every trigger at real and placebo levels whose outcome is labelled, with its level and
        whether price came from below (UP): what the evidence pictures average over (with
        build_days, those of the dates a day_partitioned build computes). -#}
    select
        triggers.trigger_id,
        triggers.symbol,
        triggers.dt,
        triggers.ts,
        triggers.level_kind,
        triggers.level_price,
        outcomes.outcome,
        triggers.approach_dir = 'UP' as from_below
    from {{ ref('approach_triggers') }} as triggers
    inner join {{ ref('trigger_outcomes') }} as outcomes
        on triggers.trigger_id = outcomes.trigger_id
    where
        outcomes.outcome is not null
        {%- if build_days %}
        and {{ in_build_days('triggers.dt') }}
        and {{ in_build_days('outcomes.dt') }}
        {%- endif %}
{%- endmacro %}
