"""UUIDv7 event ids: valid version-7 RFC 9562 UUIDs, strictly increasing within a process."""

import os
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


def test_a_forked_child_does_not_repeat_its_parents_random_bits() -> None:
    # Random bits come from a pool read 4 KiB at a time; a child inherits the pool unless it is
    # dropped at fork, and would then give out the parent's next ids' random parts too.
    uuid7()  # the pool is filled now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit without running pytest's teardown
        os.close(read)
        os.write(write, ",".join(uuid7() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    parent = [uuid7() for _ in range(5)]
    assert len(child) == 5
    assert not {i[-12:] for i in child} & {i[-12:] for i in parent}  # rand_b's last 48 bits
