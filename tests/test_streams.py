"""Read-ahead and write-behind: order kept, errors surface where they belong, threads end."""

import threading
import time

import pytest

from gnnjec.streams import WriteBehind, read_ahead


def test_read_ahead_keeps_order_and_stays_one_item_ahead():
    produced = []

    def items():
        for i in range(6):
            produced.append(i)
            yield i

    seen = []
    for item in read_ahead(items()):
        time.sleep(0.02)
        assert len(produced) - item <= 3  # the item in hand, one in the queue, one waiting to be put
        seen.append(item)
    assert seen == list(range(6))


def test_read_ahead_reraises_the_producer_error_after_the_good_items():
    def items():
        yield 1
        raise ValueError("bad basket")

    got = []
    with pytest.raises(ValueError, match="bad basket"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1]


def test_read_ahead_stops_its_thread_when_the_consumer_stops_early():
    before = threading.active_count()
    for item in read_ahead(iter(range(1000))):
        if item == 2:
            break
    assert threading.active_count() == before


def test_write_behind_writes_in_order_and_reraises_a_failed_write():
    written = []
    with WriteBehind() as behind:
        for i in range(5):
            behind.submit(written.append, i)
    assert written == list(range(5))

    def fail(_):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with WriteBehind() as behind:
            behind.submit(fail, 0)
            behind.submit(written.append, 99)  # waits for the failed write first and raises its error
    assert 99 not in written


def test_ordered_map_keeps_order_with_several_workers_and_reraises():
    from gnnjec.streams import ordered_map

    def slow_square(i):
        time.sleep(0.01 * (5 - i % 5))  # later items finish first
        return i * i

    assert list(ordered_map(slow_square, range(12), workers=3)) == [i * i for i in range(12)]
    assert list(ordered_map(slow_square, range(4), workers=1)) == [0, 1, 4, 9]

    def fail_at_3(i):
        if i == 3:
            raise ValueError("bad batch")
        return i

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for x in ordered_map(fail_at_3, range(10), workers=2):
            got.append(x)
    assert got == [0, 1, 2]
