{{ bronze_view('options_definitions') }}
