"""Records the producer never sent, failed at once when their broker cannot be reached.

aiokafka retries a batch whose leader it cannot connect to (NodeNotReadyError: raised before
anything is written) until the batch expires, `request_timeout_ms` after it was made, and
fails it only then: an append waited out its caller's deadline (the same length) and was
answered 504 "may still take effect" though nothing had left the process. `SendWatch` wraps
the producer client's `send` for produce requests: it remembers which batches may have been
written to a connection, and once the leader has been unreachable for `grace_s`, an attempt
that finds no connection fails the batches none of whose attempts got one, for good
(`Unreachable`, not retriable: aiokafka fails them itself, through its own bookkeeping).
A batch an earlier attempt may have written fails with `UnreachableAfterSending` instead: its
outcome is unknown (the broker may have stored the earlier attempt).

Only for producers without idempotence: an idempotent producer numbers its batches, and one
failed on its own would break the sequence of those after it; it retries until the broker
answers, and the broker drops repeats, so its records may indeed still land.
"""

import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, NodeNotReadyError
from aiokafka.protocol.produce import ProduceRequest

log = logging.getLogger(__name__)


class Unreachable(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """The partition's leader could not be reached; the records were never sent."""

    retriable = False


class UnreachableAfterSending(NodeNotReadyError):  # type: ignore[misc]
    """No connection now, but an earlier attempt may have handed the records to the broker."""


class SendWatch:
    """Installed on one producer when made: fails never-sent batches of an unreachable leader."""

    def __init__(self, producer: AIOKafkaProducer, grace_s: float) -> None:
        self._client: Any = producer.client
        self._pending: Any = producer._message_accumulator._pending_batches
        self._send: Callable[..., Awaitable[Any]] = self._client.send
        self._grace_s = grace_s
        self._blind = False  # set if a request's batches could not be told: no "not sent"
        self._may_have_left: weakref.WeakSet[Any] = weakref.WeakSet()
        self._unreachable_since: dict[int, float] = {}  # leader node -> first refusal (epoch s)
        self._client.send = self.send  # the sender's handler looks it up on the client

    async def send(self, node_id: int, request: Any, **kwargs: Any) -> Any:
        if not isinstance(request, ProduceRequest):
            return await self._send(node_id, request, **kwargs)
        try:
            batches = self._batches_of(request)
        except Exception:  # another aiokafka than 0.14's: never claim "not sent" from then on
            if not self._blind:
                log.warning("Kafka: cannot tell the producer's batches apart", exc_info=True)
            self._blind = True
            return await self._send(node_id, request, **kwargs)
        try:
            response = await self._send(node_id, request, **kwargs)
        except NodeNotReadyError as exc:  # client.send's own: no connection, nothing written
            raise self._refusal(node_id, batches) from exc
        except BaseException:
            self._left(node_id, batches)  # written, maybe: its outcome is unknown
            raise
        self._left(node_id, batches)
        return response

    def _batches_of(self, request: Any) -> list[Any]:
        # The request carries each batch's built buffer (built once, reused by each retry).
        buffers = {id(buffer) for _, parts in request._topics for _, buffer in parts}
        return [b for b in self._pending if id(getattr(b._builder, "_buffer", None)) in buffers]

    def _left(self, node_id: int, batches: list[Any]) -> None:
        self._unreachable_since.pop(node_id, None)  # it got a connection
        self._may_have_left.update(batches)

    def _refusal(self, node_id: int, batches: list[Any]) -> NodeNotReadyError | Unreachable:
        now = time.time()
        since = self._unreachable_since.get(node_id)
        # The broker answered a metadata request since: that refusal was of an earlier outage.
        if since is None or self._client.cluster._last_successful_refresh_ms / 1000 > since:
            since = self._unreachable_since[node_id] = now
        if self._blind or any(b in self._may_have_left for b in batches):
            return UnreachableAfterSending(f"node {node_id} unreachable; sent before, maybe")
        if now - since < self._grace_s:
            return NodeNotReadyError(f"node {node_id} unreachable")  # retried (a blip)
        return Unreachable(
            f"the partition leader (node {node_id}) has been unreachable for {now - since:.1f}s:"
            " nothing was sent"
        )
