{% test partition_records_match_manifest(model) %}
{#-
    Bronze partitions whose records read through the view are not the records ingest wrote:
    another count or record_index range than the partition's _manifest.json, or a partition
    without a manifest (or a manifest without data). Ingest refuses to write a partition whose
    record_index does not strictly increase, so (symbol, dt, record_index) is unique by
    construction; this checks the lake still holds exactly what was written, reading only
    the Parquet metadata and one column instead of hashing every key.
-#}
{%- set table_name = model.identifier -%}
with read_back as (
    select
        symbol,
        dt,
        count(*) as records,
        min(record_index) as first_record_index,
        max(record_index) as last_record_index
    from {{ model }}
    group by symbol, dt
),

written as (
    {%- if execute and bronze_table_landed(table_name) %}
    select
        symbol,
        dt,
        records,
        record_index_range[1] as first_record_index,
        record_index_range[2] as last_record_index
    from read_json(
        '{{ lake_dir() }}/bronze/{{ table_name }}/*/*/_manifest.json',
        columns = {
            symbol: 'VARCHAR', dt: 'DATE', records: 'BIGINT', record_index_range: 'BIGINT[]'
        }
    )
    {%- else %}
    select
        cast(null as varchar) as symbol,
        cast(null as date) as dt,
        cast(null as bigint) as records,
        cast(null as bigint) as first_record_index,
        cast(null as bigint) as last_record_index
    where false
    {%- endif %}
)

select
    coalesce(read_back.symbol, written.symbol) as symbol,
    coalesce(read_back.dt, written.dt) as dt,
    read_back.records as records_read,
    written.records as records_written,
    read_back.first_record_index as first_record_index_read,
    written.first_record_index as first_record_index_written,
    read_back.last_record_index as last_record_index_read,
    written.last_record_index as last_record_index_written
from read_back
full outer join written
    on read_back.symbol = written.symbol and read_back.dt = written.dt
where
    read_back.records is distinct from written.records
    or read_back.first_record_index is distinct from written.first_record_index
    or read_back.last_record_index is distinct from written.last_record_index
{% endtest %}
