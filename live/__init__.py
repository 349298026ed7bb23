"""Live: the warehouse's engine on a record stream, a day's DBN files replayed at a
chosen speed or (next) a Databento Live subscription, feeding one code path."""
