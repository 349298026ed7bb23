"""A synthetic CME Globex ES market written as real Databento DBN files.

The default data of the demo and the end-to-end tests: ingest cannot tell it from Databento
downloads. See `simulate.simulate_market`.
"""
