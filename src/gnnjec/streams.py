"""Overlapping the stages of a conversion: read ahead in one thread, write behind in another.

Decompressing ROOT baskets (zlib, lz4, zstd) and encoding Parquet both release the GIL, so with a
one-item queue on either side the numpy work in between runs while the next chunk is being read
and the previous one written. Memory stays bounded: at most one chunk waits on each side.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_DONE = object()


def read_ahead(items: Iterable, depth: int = 1) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    An exception raised by the producer is re-raised in the consumer at the point it occurred; if
    the consumer stops early, the producer is told to stop and its thread ends.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as err:  # handed to the consumer
            put((_DONE, err))
            return
        put((_DONE, None))

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, err = buffer.get()
            if item is _DONE:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        thread.join()


class WriteBehind:
    """Run ``write(item)`` calls in one background thread, one at a time, in order.

    ``submit`` waits for the previous write first (so one item at most is in flight) and re-raises
    its exception; ``flush`` waits for the last one.
    """

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")
        self._pending: Future | None = None

    def submit(self, write, *args, **kwargs) -> None:
        self.flush()
        self._pending = self._pool.submit(write, *args, **kwargs)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.flush()
        finally:
            self._pool.shutdown(wait=True)


def ordered_map(function, items: Iterable, workers: int, depth: int | None = None) -> Iterator:
    """``function(item)`` for each item, computed by ``workers`` threads, yielded in the items' order.

    At most ``depth`` (default ``2 * workers``) results are computed ahead of the consumer, so memory
    stays bounded. With one worker this is :func:`read_ahead` of the mapped items.
    """
    if workers <= 1:
        yield from read_ahead(map(function, items), depth or 1)
        return
    depth = depth or 2 * workers
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ordered-map") as pool:
        pending: list[Future] = []
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > depth:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()
