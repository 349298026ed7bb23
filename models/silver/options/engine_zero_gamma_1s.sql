-- The zero-gamma level per second, read from the lake partitions engine_zero_gamma_partitions
-- lists.
{{ engine_partitions_view('zero_gamma_1s', ref('engine_zero_gamma_partitions')) }}
