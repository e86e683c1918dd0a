"""What the lock sweep costs while the restored marker is missing or stale (Redis lost its locks,
the restore has not run): no log call per round once the log was found holding records
(gateway/restored.py `settle`), and the marker read once per round, not by each letter's SWEEP
(gateway/collab/locks.py `_sweep_each`). Real Redis (its own `INFO commandstats` counts) and
the real log (its `end_offsets` counted where it is called)."""

import json
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gateway import restored
from gateway.collab import lock_scripts
from gateway.collab.locks import Locks
from schemas.keys import RESTORED
from tests.collab.conftest import Collab

STALE = "x" * 40  # the run_id of another Redis process: a restart from an older snapshot
LAPSED = {"id": "u9", "name": "U9", "expires_at": 1.0, "n": "x", "attended": False}


@pytest_asyncio.fixture(loop_scope="session")
async def sweeper(collab: Collab) -> AsyncIterator[Locks]:
    """The gateway's sweeper, run by the test's rounds only; the log holds a letter."""
    locks: Locks = collab.gw.app.state.locks
    await locks.close()
    await collab.gw.create_letter("x")
    yield locks


async def waiting(collab: Collab, *letters: str) -> None:
    """Letters due now with a lapsed entry each: what a sweep would claim but for the marker."""
    for lid in letters:
        await collab.redis.hset(f"locks:{lid}", "A", json.dumps(LAPSED))
        await collab.redis.zadd(lock_scripts.DUE, {f"locks:{lid}": 0})


async def calls(collab: Collab) -> dict[str, int]:
    """The Redis server's own counts: INFO (the marker's run_id, read in scripts too), GET (the
    marker itself, and each lapsed entry's lock key) and HGETALL (each SWEEP reads its letter's
    index so; nothing else here does)."""
    stats = await collab.redis.info("commandstats")
    names = ("info", "get", "hgetall")
    return {c: int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in names}


async def test_a_busy_log_is_asked_once_while_the_marker_is_missing(
    collab: Collab, sweeper: Locks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log's end never goes back to empty: once found holding records, rounds (every 5 s on
    each instance) and refused gates ask Redis only whether the restore has run."""
    log = collab.gw.log
    real, asked = log.end_offsets, []

    async def counted(topic: str) -> dict[int, int]:
        if sys._getframe(1).f_globals["__name__"] == restored.__name__:
            asked.append(topic)  # the marker's only: the projector asks too
        return await real(topic)

    monkeypatch.setattr(log, "end_offsets", counted)
    await collab.redis.delete(RESTORED)
    await waiting(collab, "l1")
    for _ in range(4):
        await sweeper.sweep()
    lid = await collab.gw.create_letter("y")  # `keep`: the marker stays missing
    r = await collab.call("POST", f"/v1/letters/{lid}/locks/a", user="al")
    assert r.status_code == 503, r.text
    assert len(asked) == 1, asked
    assert await collab.redis.exists("locks:l1")  # left to the restore

    await collab.redis.set(RESTORED, await restored.run_id(collab.redis))  # restored
    await sweeper.sweep()
    assert not await collab.redis.exists("locks:l1")  # swept (a letter no store knows: dropped)
    assert len(asked) == 1, asked


@pytest.mark.parametrize("marker", [None, STALE])
async def test_a_round_held_back_by_the_marker_reads_it_once(
    collab: Collab, sweeper: Locks, marker: str | None
) -> None:
    """The marker is the whole Redis': once one letter is held back every other is, and with
    a stale marker each SWEEP paid an INFO (~1 KB) to learn it again. Every letter is still
    swept (its bookkeeping: a present holder's away mark, its next look) and due again soon."""
    await collab.redis.delete(RESTORED)
    if marker is not None:
        await collab.redis.set(RESTORED, marker)
    await waiting(collab, "l1", "l2", "l3", "l4", "l5")
    await sweeper.sweep()  # the log found busy: not asked again (the test above)
    before = await calls(collab)
    await sweeper.sweep()
    after = await calls(collab)
    # Five SWEEPs; a stale marker's INFO in the first and in `settle`'s look (`present`), then ours.
    infos = 1 + (2 if marker is not None else 0)
    # A GET of each lapsed entry's lock key; of the marker, in the first SWEEP and `present`.
    expected = {"info": infos, "get": 5 + 2, "hgetall": 5}
    assert {c: after[c] - before[c] for c in after} == expected
    assert await collab.redis.exists(*(f"locks:l{i}" for i in range(1, 6))) == 5
    seconds, micros = await collab.redis.time()
    now_ms = seconds * 1000 + micros // 1000
    for i in range(1, 6):
        at = await collab.redis.zscore(lock_scripts.DUE, f"locks:l{i}")
        assert at is not None and now_ms < at <= now_ms + lock_scripts.SWEEP_EVERY_MS, (i, at)
