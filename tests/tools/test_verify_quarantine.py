"""`verify` lists the records the consumers quarantined (issue 9, item 6) and exits 1 for them.

The quarantines are produced as in tests/attacks/test_quarantine.py: the snapshotter meets an
update that really panics Yrs; the projector's fold crash is injected (no known input crashes it).
"""

from typing import Any

import pytest

from eventlog import Log
from projector import consumer as projector_consumer
from projector import fold as projector_fold
from projector import quarantine as projector_quarantine
from schemas.envelope import new_event
from schemas.events import Topic
from schemas.settings import Settings
from tests.attacks.panics import Panic, panicking_update
from tests.projector.support import Editor, caught_up, created, projector
from tests.projector.support import append as append_events
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.cli import cli_env, run_cli
from tests.tools.snapshots import run_to_end
from tools.sources import open_sources
from tools.verify import quarantined


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the report reads Redis and PostgreSQL; the log kind does not matter


async def _poisoned_log(log: Log, settings: Settings) -> Any:
    """Three letters: one the snapshotter must quarantine, one the projector must, one clean."""
    topic = settings.topic(Topic.LETTERS)
    s = LetterScript("L-poison")
    poison = new_event(
        s.letter_id, panicking_update(s.doc.client_id, 0), firm=s.firm, user="mallory",
        type="doc.update",
    )  # fmt: skip
    first = s.paragraph("alice", "before")
    await append(log, topic, [s.created(), first, poison, s.paragraph("alice", "after")])
    ed = Editor("Q1")
    crash = ed.event(ed.paragraph("poison"))
    await append_events(log, settings, [created("Q1"), ed.event(ed.paragraph("a")), crash])
    clean = LetterScript("L-clean")
    await append(log, topic, [clean.created(), clean.paragraph("bob", "fine")])
    return crash.envelope.id


async def _project(log: Log, settings: Settings, crash_id: Any, mp: pytest.MonkeyPatch) -> None:
    real = projector_fold.fold_letter

    def crashing(state: Any, items: Any, doc_field: str) -> Any:
        if any(item.event.envelope.id == crash_id for item in items):
            raise Panic("injected")
        return real(state, items, doc_field)

    with mp.context() as patch:
        patch.setattr(projector_consumer, "fold_letter", crashing)
        patch.setattr(projector_quarantine, "fold_letter", crashing)
        async with open_sources(settings, redis=True) as src, projector(settings, log):
            assert src.redis is not None
            await caught_up(log, settings, src.redis)


async def test_verify_reports_quarantined_records(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_id = await _poisoned_log(log, settings)
    await _project(log, settings, crash_id, monkeypatch)
    await run_to_end(log, settings)
    topic = settings.topic(Topic.LETTERS)
    async with open_sources(settings, redis=True, pg=True) as src:
        found = await quarantined(src)
        only_q1 = await quarantined(src, ["Q1"])
    records = [(q.consumer, q.record) for q in found]
    assert [(c, r.letter_id, r.topic, r.partition, r.offset) for c, r in records] == [
        ("snapshotter", "L-poison", topic, 0, 2),
        ("projector", "Q1", topic, 0, 6),
    ]
    assert [q.record.letter_id for q in only_q1] == ["Q1"] and "injected" in only_q1[0].record.error
    env = cli_env(settings)
    code, out, _ = await run_cli(env, "verify", "L-clean")
    assert code == 0 and "0 mismatch(es), 0 quarantined record(s)" in out
    code, out, _ = await run_cli(env, "verify", "L-poison", "--quiet")
    assert code == 1 and "quarantined records" in out
    assert f"QUARANTINED L-poison snapshotter: {topic}/0/2 doc.update" in out and "Q1" not in out
    code, out, _ = await run_cli(env, "verify", "--all")
    assert code == 1 and "2 quarantined record(s)" in out
    assert f"QUARANTINED Q1 projector: {topic}/0/6 doc.update (skipped after 3 attempts" in out
