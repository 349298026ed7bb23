"""How the engine's large NumPy arrays are backed by memory pages.

NumPy advises the kernel to back every array of 4 MiB or more with transparent huge pages
(`madvise(MADV_HUGEPAGE)`). Where the kernel's THP defrag policy is `madvise` (the default
here: /sys/kernel/mm/transparent_hugepage/defrag), a fault in such an array may first
compact memory to find a free 2 MiB page, in kernel time, more often the more the page cache
holds. The engine makes its arrays once per contract-day (a day's records, the replay's
state, its rows) and the replay's random reads gain nothing measurable from huge pages:
measured on the busy day's front contract (25.8 M records), loading and replaying took
6.3-7.6 s with the advice (2.7-4.0 s of it in the kernel) and 4.9-5.1 s without (1.2-1.3 s).
"""

from __future__ import annotations

from numpy._core import multiarray


def without_huge_page_advice() -> None:
    """New NumPy arrays of this process get ordinary pages: NumPy's own switch, which
    NUMPY_MADVISE_HUGEPAGE=0 also sets when given before NumPy is imported. Set where the
    engine is imported rather than in the environment of each process that may run it (a
    `dbt build` started by hand included)."""
    multiarray._set_madvise_hugepage(False)
