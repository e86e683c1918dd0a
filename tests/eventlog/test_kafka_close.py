"""`KafkaLog.close` on a stalled broker (Tansu SIGSTOPped): its clients stop at once, not one
after another. On a frozen broker each stop waits for its client's request in flight (a group's
coordinator lookup: up to two request timeouts); in turn they added up (18 s for a gateway)."""

import asyncio
import time
import uuid

from eventlog.errors import LogError
from eventlog.kafka import KafkaLog
from eventlog.records import Entry
from steno_collab.processes import Supervised
from tests.eventlog.brokers import own_broker
from tests.support import frozen

__all__ = ["own_broker"]  # the fixture of tests/eventlog/brokers.py: a broker the test may freeze
TIMEOUT_S = 1.0  # the log's own request timeout
GROUPS = "abcd"


async def test_close_on_a_frozen_broker_stops_its_clients_at_once(
    own_broker: tuple[str, Supervised],
) -> None:
    bootstrap, proc = own_broker
    topic = f"c{uuid.uuid4().hex[:8]}.letters"
    log = KafkaLog(bootstrap, 1, {topic: None}, idempotence=False, append_timeout_s=TIMEOUT_S)
    await log.start()
    await log.append(topic, b"k", [Entry(b"one")])
    for group in GROUPS:
        await log.commit(group, topic, {0: 1})
    with frozen(proc.pid):
        commits = [asyncio.ensure_future(log.commit(g, topic, {0: 1})) for g in GROUPS]
        # Past their request timeout: each group's coordinator is looking for a new one, and
        # a consumer's stop waits for that lookup (measured: 1-2 request timeouts each).
        await asyncio.sleep(2 * TIMEOUT_S)
        began = time.monotonic()
        await log.close()
        took = time.monotonic() - began
    # One after another: about 1 + 2 + 2 + 2 request timeouts; at once: at most 2.
    assert took < 3.5 * TIMEOUT_S
    # The commits in flight end too (refused, or as aiokafka's stopped coordinator leaves
    # them): one of them never returned before (no bound of its own).
    done, _ = await asyncio.wait(commits, timeout=TIMEOUT_S)
    assert done == set(commits)
    assert all(c.exception() is None or isinstance(c.exception(), LogError) for c in commits)
