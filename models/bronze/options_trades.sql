{{ bronze_view('options_trades') }}
