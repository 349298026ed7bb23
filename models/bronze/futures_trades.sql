{{ bronze_view('futures_trades') }}
