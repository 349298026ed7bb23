"""Options gamma exposure maths: Black-76 pricing, greeks and implied volatility."""
