"""Facts of the Databento DBN format and GLBX.MDP3 that every layer relies on: databento-dbn's
own constants where it defines them, and the few it does not.

Market conventions (tick size, session windows, thresholds) live in dbt vars and seeds,
not here: this module holds only what the file format itself defines.
"""

from typing import Final

import databento_dbn

DATASET: Final = "GLBX.MDP3"

# Record flag bits, tested with masks.
F_LAST: Final[int] = databento_dbn.F_LAST
F_TOB: Final[int] = databento_dbn.F_TOB
F_SNAPSHOT: Final[int] = databento_dbn.F_SNAPSHOT
F_MBP: Final[int] = databento_dbn.F_MBP
F_BAD_TS_RECV: Final[int] = databento_dbn.F_BAD_TS_RECV
F_MAYBE_BAD_BOOK: Final[int] = databento_dbn.F_MAYBE_BAD_BOOK

# Sentinels: never convert them to real prices, sizes or times.
UNDEF_PRICE: Final[int] = databento_dbn.UNDEF_PRICE
UNDEF_TIMESTAMP: Final[int] = databento_dbn.UNDEF_TIMESTAMP
UNDEF_STAT_QUANTITY: Final[int] = databento_dbn.UNDEF_STAT_QUANTITY
# DBN version 1 files held statistics quantities as int32
UNDEF_STAT_QUANTITY_V1: Final = 2**31 - 1
UNDEF_INT32: Final = 2**31 - 1

PRICE_SCALE: Final[int] = databento_dbn.FIXED_PRICE_SCALE  # prices are int64 in 1e-9 units
NANOS_PER_DAY: Final = 86_400 * 1_000_000_000
