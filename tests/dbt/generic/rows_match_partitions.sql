{% test rows_match_partitions(model, partitions) %}
{#-
    Contract-days whose rows read through an engine view are not the rows the engine wrote:
    another count than the partition's (`partitions`: the engine model's table, from each
    partition's manifest), rows of a day without a partition, or a partition not read. The
    engine checks each partition's key as it writes it (the options' quotes: rows in time
    order, each option once a second, by the sums computed from them), so the key is unique
    by construction; this checks the lake still holds exactly that, counting rows from the
    Parquet metadata instead of hashing every key.
-#}
with read_back as (
    select
        symbol,
        dt,
        count(*) as rows_read
    from {{ model }}
    group by symbol, dt
),

written as (
    select
        symbol,
        dt,
        rows as rows_written
    from {{ partitions }}
)

select
    coalesce(read_back.symbol, written.symbol) as symbol,
    coalesce(read_back.dt, written.dt) as dt,
    read_back.rows_read,
    written.rows_written
from read_back
full outer join written
    on read_back.symbol = written.symbol and read_back.dt = written.dt
where coalesce(read_back.rows_read, 0) is distinct from written.rows_written
{% endtest %}
