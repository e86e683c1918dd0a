"""Messages over their budget wait for it, the latest of each kind only (gateway/live/pacing.py)."""

import asyncio

from gateway.inbound import Inbound
from gateway.live.buckets import TokenBucket
from gateway.live.pacing import Paced


def _paced(rate: float) -> tuple[Paced, list[Inbound], list[str], asyncio.Event]:
    delivered: list[Inbound] = []
    refused: list[str] = []
    arrived = asyncio.Event()

    def deliver(msg: Inbound) -> None:
        delivered.append(msg)
        arrived.set()

    bucket = TokenBucket(rate, 1)
    bucket.take()  # spent: what follows waits
    return Paced(bucket, "over", deliver, refused.append), delivered, refused, arrived


async def test_the_latest_of_each_kind_waits_and_the_replaced_are_counted() -> None:
    paced, delivered, refused, arrived = _paced(rate=50.0)  # one every 20 ms
    assert not paced.take()
    first, second = Inbound("sync_step1", b"1"), Inbound("sync_step1", b"2")
    query = Inbound("query_awareness", b"")
    for msg in (first, second, query):
        paced.wait(msg)
    assert refused == ["over"]  # the first step 1, replaced by the second
    while len(delivered) < 2:
        arrived.clear()
        await asyncio.wait_for(arrived.wait(), 1)
    assert delivered == [second, query]  # one per refill, in the order of their kinds
    assert refused == ["over"]


async def test_nothing_is_delivered_after_stop() -> None:
    paced, delivered, _, arrived = _paced(rate=50.0)
    paced.wait(Inbound("awareness", b"x"))
    paced.stop()
    other, other_delivered, _, other_arrived = _paced(rate=50.0)
    other.wait(Inbound("awareness", b"y"))  # a witness with the same timing
    await asyncio.wait_for(other_arrived.wait(), 1)
    await asyncio.sleep(0)
    assert other_delivered and not delivered and not arrived.is_set()


async def test_a_delivery_that_raises_is_logged_and_the_next_still_goes() -> None:
    delivered: list[Inbound] = []
    done = asyncio.Event()

    def deliver(msg: Inbound) -> None:
        if msg.kind == "bad":
            raise ValueError("refused")
        delivered.append(msg)
        done.set()

    bucket = TokenBucket(1000.0, 2)
    bucket.take()
    bucket.take()
    paced = Paced(bucket, "over", deliver, lambda reason: None)
    paced.wait(Inbound("bad", b""))
    paced.wait(Inbound("good", b""))
    await asyncio.wait_for(done.wait(), 1)
    assert [m.kind for m in delivered] == ["good"]


def test_reserve_takes_into_debt_and_says_how_long_it_lasts() -> None:
    """A message over the frame rate reserves its token (gateway/live/connection.py): each one
    waits one interval longer than the one before, so they leave at the rate, in order."""
    bucket = TokenBucket(10.0, 2)
    waits = [bucket.reserve() for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert 0.09 < waits[2] <= 0.1
    assert 0.19 < waits[3] <= 0.2
    assert not bucket.take()
