"""The book engine: Databento MBO to L3 order books and 1-second surfaces (Numba).

A plain library with no dbt imports: `replay.replay_windows` for the surfaces (and
`replay.replay_batches` for a day read in batches),
`replay.book_at` for the book at a moment, `replay.top_of_book_events` for the best bid and
ask after every event. The kernel's rules are in `kernel`'s docstring.
"""

from book_engine.memory_pages import freed_pages_kept, without_huge_page_advice

# the engine's day-sized arrays get ordinary pages, and its batches reuse the pages of the
# batches before, in every process that runs it (dbt's, a Ray worker's, live's, a
# benchmark's): see book_engine.memory_pages
without_huge_page_advice()
freed_pages_kept()
