{{ bronze_view('futures_mbo') }}
