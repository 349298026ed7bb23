{{ bronze_view('futures_mbp_1') }}
