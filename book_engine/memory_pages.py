"""How the engine's large NumPy arrays are backed by memory pages.

Freed pages are kept for the next array. glibc's malloc serves an array of more than 128 KiB
(a threshold it raises as such arrays are freed, to 32 MiB at most) from pages mapped for it
alone, unmapped again when it is freed, and hands the heap's free top back to the kernel past
a threshold: every batch of a day's rows (1 M option-seconds: ten 8 MiB columns) then faults
its pages in one by one, and in this virtual machine a fault costs about 1.5 us, in the
threads' shared address space. Measured on the realistic day's options (17.4 M option-
seconds): pricing 2.85 s on one core and 2.39 s on two with fresh pages, 2.47 and 1.51 s with
freed pages reused. Arrays over 32 MiB (a day's columns) still get their own mapping.

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

import ctypes
import ctypes.util

from numpy._core import multiarray

# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LARGEST_MMAP_THRESHOLD = 32 << 20  # glibc's upper limit on 64-bit (HEAP_MAX_SIZE / 2)
_NEVER_TRIM = (1 << 31) - 1  # an int: mallopt takes one


def without_huge_page_advice() -> None:
    """New NumPy arrays of this process get ordinary pages: NumPy's own switch, which
    NUMPY_MADVISE_HUGEPAGE=0 also sets when given before NumPy is imported. Set where the
    engine is imported rather than in the environment of each process that may run it (a
    `dbt build` started by hand included)."""
    multiarray._set_madvise_hugepage(False)


def freed_pages_kept() -> None:
    """Arrays up to 32 MiB come from the heap and their pages stay mapped when freed (the
    next array of the same size reuses them without a fault); set for the whole process, the
    threads' arenas included. The resident memory stays at its peak until the process ends
    (the busy day's build peaked at 1.3-1.4 GiB either way)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    kept = libc.mallopt(_M_MMAP_THRESHOLD, _LARGEST_MMAP_THRESHOLD) == 1
    if not (kept and libc.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1):
        raise OSError("mallopt refused the engine's thresholds: is this glibc's malloc?")
