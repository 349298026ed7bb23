{{ bronze_view('options_mbo') }}
