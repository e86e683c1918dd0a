"""Records stored twice far apart: a gateway's rescue appends again what an unconfirmed Kafka
append held (LogUnconfirmedError: a request left unanswered past the producer's request
timeout, which the broker may store yet), so the second copy of each event lands after the
whole first copy: hundreds of updates later in a stall with people typing. The fold remembered
the last 256 ids of a letter's records, updates included: the sessions' ends, comments, locks
and named versions of such a batch were folded twice (audit rows, versions)."""

from collections import Counter

from schemas.settings import Settings
from snapshotter.audit import AuditRow
from snapshotter.fold import Folder
from snapshotter.state import RECENT_IDS
from tests.snapshotter.folding import Log
from tests.snapshotter.scripts import LetterScript


def test_a_batch_stored_twice_far_apart_is_folded_once() -> None:
    s = LetterScript("L-twice")
    opening = [s.created("alice"), s.paragraph("alice", ""), s.joined("alice", "c1")]
    opening.append(s.joined("bob", "c2"))
    typed = [s.type_text("alice", 0, 0, "x") for _ in range(RECENT_IDS + 44)]
    others = [s.comment("bob", "t1", "m1", "see"), s.lock("bob", "intro"), s.save("alice", "v")]
    held = [*typed, *others, s.left("alice", "c1"), s.left("bob", "c2")]

    once = Folder(Settings()).fold(Log().records([*opening, *held])).audit
    twice = Folder(Settings()).fold(Log().records([*opening, *held, *held])).audit

    def kinds(rows: list[AuditRow]) -> Counter[tuple[str, str]]:
        return Counter((row.change_type, row.user_id) for row in rows)

    assert kinds(twice) == kinds(once)
    assert kinds(once)[("session-end", "bob")] == 1  # what the test is about is in it
    assert kinds(once)[("comment.created", "bob")] == 1
