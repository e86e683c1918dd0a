"""UUIDv7 event ids: valid version-7 RFC 9562 UUIDs, strictly increasing within a process."""

import threading
import time
import uuid

from schemas.ids import uuid7, uuid7_ms


def test_ids_are_version_7_rfc_9562() -> None:
    parsed = uuid.UUID(uuid7())
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_carry_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    event_id = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= uuid7_ms(event_id) <= after + 1  # +1: a counter overflow may borrow a ms


def test_ids_strictly_increase_even_within_one_millisecond() -> None:
    ids = [uuid7() for _ in range(20_000)]  # far more than 4096 per ms: exercises the overflow
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids[::997])


def test_ids_from_many_threads_are_unique_and_ordered_per_thread() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(uuid7() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(out == sorted(out) for out in results)
    assert len({i for out in results for i in out}) == 8_000
