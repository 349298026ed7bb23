"""spymaster: market-microstructure research warehouse for CME E-mini S&P 500 futures."""

__version__ = "0.1.0"
