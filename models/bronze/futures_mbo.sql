-- live: the selected contract's records as the live session receives them (live.sql_layers)
{{ config(meta={'live': {'source': 'futures_engine', 'time_column': 'ts_recv', 'period_seconds': 0}}) }}
{{ bronze_view('futures_mbo') }}
