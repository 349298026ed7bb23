-- The book engine's depth and flow rows, from the lake partitions
-- engine_depth_and_flow_partitions lists.
{{ engine_partitions_view('depth_and_flow_1s', ref('engine_depth_and_flow_partitions')) }}
