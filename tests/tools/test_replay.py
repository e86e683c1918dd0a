"""Replay exactness: at every recorded instant and offset of a randomized multi-client session,
the replay equals what a client connected at that instant held; from the log alone and from the
snapshotter's versions plus the log after them; on both log implementations."""

import bisect
import random
from typing import Any

import pytest
from pycrdt import Doc

from eventlog import Log
from gateway.content import plain_text
from schemas.settings import Settings
from tests.tools.conftest import recorded
from tests.tools.session import FIELD, Seen, Session
from tests.tools.snapshots import snapshot_all
from tools.replay import Cut, LetterNotFound, replay
from tools.sources import open_sources
from tools.statevector import decode_state_vector


def expected_at_position(seen: list[Seen], position: int) -> Seen | None:
    i = bisect.bisect_right([s.position for s in seen], position) - 1
    return seen[i] if i >= 0 else None


def expected_at_ms(seen: list[Seen], at_ms: int) -> Seen | None:
    before = [s for s in seen if s.at_ms <= at_ms]
    return before[-1] if before else None


def check(state: bytes, want: Seen | None) -> None:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    if want is None:
        assert plain_text(doc, FIELD) == ""
        return
    assert plain_text(doc, FIELD) == want.text
    assert decode_state_vector(doc.get_state()) == decode_state_vector(want.state_vector)


async def replay_everywhere(
    settings: Settings, session: Session, pg: bool, limit: int = 1000
) -> int:
    """Replay at every recorded position and instant (a sample of `limit` of each)."""
    seen, checked = session.seen, 0
    rng = random.Random(7)

    def sample(values: list[int]) -> list[int]:
        return values if len(values) <= limit else sorted(rng.sample(values, limit))

    async with open_sources(settings, pg=pg) as src:
        last = seen[-1].position + 10
        positions = sorted({s.position for s in seen} | {rng.randrange(last) for _ in range(20)})
        for position in sample(positions):
            got = await replay(src, session.letter_id, Cut(offset=position))
            check(got.state, expected_at_position(seen, position))
            checked += 1
        instants = sorted({s.at_ms for s in seen})
        for at in [*sample(instants), instants[0] - 1, instants[-1] + 1000]:
            got = await replay(src, session.letter_id, Cut(at_ms=at))
            check(got.state, expected_at_ms(seen, at))
            checked += 1
        final = await replay(src, session.letter_id)
        for client in [session.observer, *session.clients]:  # quiescent: everyone agrees
            assert plain_text(client.doc, FIELD) == final.snapshot.content
    return checked


async def test_replay_equals_client_states(settings: Settings, log: Log, log_kind: str) -> None:
    other = await recorded(log, settings, "other-letter", seed=2, steps=40)
    session = await recorded(log, settings, "letter-1", seed=1, steps=160)
    assert len(session.seen) > 60 and other.seen
    limit = 1000 if log_kind == "embedded" else 15  # a Kafka read costs a round trip or two
    assert await replay_everywhere(settings, session, pg=False, limit=limit) > 30
    await snapshot_all(settings, log)
    async with open_sources(settings, pg=True) as src:
        versions = await src.pg.fetchval(
            "SELECT count(*) FROM letter_version WHERE letter_id = 'letter-1'"
        )
        assert versions >= 5
        late = await replay(src, "letter-1", Cut(offset=session.seen[-1].position))
        assert late.base_version is not None  # started from a version, not from the log alone
    assert await replay_everywhere(settings, session, pg=True, limit=limit) > 30


async def test_unknown_letter(settings: Settings, log: Log) -> None:
    await recorded(log, settings, "known", seed=3, steps=5)
    async with open_sources(settings, pg=True) as src:
        with pytest.raises(LetterNotFound):
            await replay(src, "never-created")
