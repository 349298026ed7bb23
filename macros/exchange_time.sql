{% macro exchange_local_time(ts_ns) -%}
    {#- UTC nanoseconds since the epoch as a naive timestamp in the exchange's time zone
        (America/New_York by default, daylight saving included). -#}
    timezone(
        '{{ var("exchange_timezone") }}',
        make_timestamp({{ ts_ns }} // 1000) at time zone 'UTC'
    )
{%- endmacro %}


{% macro in_session_window(local_ts, session_date) -%}
    {#- True when a local exchange timestamp lies in the research window of the session date. -#}
    (
        cast({{ local_ts }} as date) = {{ session_date }}
        and cast({{ local_ts }} as time) >= time '{{ var("session_window_start") }}'
        and cast({{ local_ts }} as time) < time '{{ var("session_window_end") }}'
    )
{%- endmacro %}


{% macro exchange_time_utc(session_date, local_time) -%}
    {#- The UTC timestamp of a wall-clock time (a 'HH:MM' string) on a session date, in the
        exchange's time zone. -#}
    timezone(
        'UTC',
        timezone('{{ var("exchange_timezone") }}', {{ session_date }} + time '{{ local_time }}')
    )
{%- endmacro %}


{% macro exchange_time_utc_of(session_date, local_time) -%}
    {#- Like exchange_time_utc, for a TIME column or expression rather than a literal. -#}
    timezone(
        'UTC',
        timezone('{{ var("exchange_timezone") }}', {{ session_date }} + {{ local_time }})
    )
{%- endmacro %}


{% macro window_floor(ts, seconds) -%}
    {#- The start of the epoch-aligned `seconds`-long window holding a timestamp. -#}
    make_timestamp((epoch_us({{ ts }}) // {{ seconds * 1000000 }}) * {{ seconds * 1000000 }})
{%- endmacro %}
