-- The options engine's rows, read from the lake partitions engine_options_quote_partitions lists.
{{ engine_partitions_view('options_quotes_1s', ref('engine_options_quote_partitions')) }}
