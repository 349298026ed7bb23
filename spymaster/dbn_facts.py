"""Facts of the Databento DBN format and GLBX.MDP3 that every layer relies on.

Market conventions (tick size, session windows, thresholds) live in dbt vars and seeds,
not here: this module holds only what the file format itself defines.
"""

from typing import Final

DATASET: Final = "GLBX.MDP3"

# Record flag bits (databento_dbn.F_*), tested with masks.
F_LAST: Final = 128
F_TOB: Final = 64
F_SNAPSHOT: Final = 32
F_MBP: Final = 16
F_BAD_TS_RECV: Final = 8
F_MAYBE_BAD_BOOK: Final = 4

# Sentinels: never convert them to real prices, sizes or times.
UNDEF_PRICE: Final = 2**63 - 1
UNDEF_TIMESTAMP: Final = 2**64 - 1
UNDEF_STAT_QUANTITY: Final = 2**63 - 1
UNDEF_STAT_QUANTITY_V1: Final = 2**31 - 1
UNDEF_INT32: Final = 2**31 - 1

PRICE_SCALE: Final = 1_000_000_000  # prices are int64 in 1e-9 units
NANOS_PER_DAY: Final = 86_400 * 1_000_000_000
