{{ bronze_view('options_mbp_1') }}
