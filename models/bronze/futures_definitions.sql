{{ bronze_view('futures_definitions') }}
