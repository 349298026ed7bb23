{{ bronze_view('futures_statistics') }}
