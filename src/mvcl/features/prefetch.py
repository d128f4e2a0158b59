"""Work on the rows of a table ahead of their consumer, in background threads, handed out in row order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pandas as pd


@contextmanager
def ahead(
    table: pd.DataFrame, work: Callable[[object], object], workers: int, lookahead: int, name: str
) -> Iterator[Iterator[tuple[int, object, Future]]]:
    """An iterator of (row, record, future of work(record)) in row order.

    Work starts on entry and stays `lookahead` rows ahead of the consumer; on exit (also after an error)
    work not yet started is dropped.
    """
    rows = enumerate(table.itertuples(index=False))
    pending: deque[tuple[int, object, Future]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def submit_next() -> None:
        if (item := next(rows, None)) is not None:
            row, record = item
            pending.append((row, record, pool.submit(work, record)))

    def in_order() -> Iterator[tuple[int, object, Future]]:
        while pending:
            item = pending.popleft()
            submit_next()
            yield item

    try:
        for _ in range(lookahead):
            submit_next()
        yield in_order()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
