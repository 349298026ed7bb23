-- Dealer-signed gamma exposure by strike and second, read from the lake partitions
-- engine_gex_by_strike_partitions lists.
{{ engine_partitions_view('gex_by_strike_1s', ref('engine_gex_by_strike_partitions')) }}
