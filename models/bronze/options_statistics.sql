{{ bronze_view('options_statistics') }}
