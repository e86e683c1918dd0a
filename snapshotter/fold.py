"""The fold: log records in, PostgreSQL rows out (no I/O here; `store` writes what this returns).

Bad input never stops the fold: undecodable, oversized, duplicated records, events for an
unknown letter or another firm, and Yjs updates that do not apply are counted in `stats`,
logged with their partition/offset, and skipped. Anything else a record raises (a bug, a
pycrdt panic) becomes `PoisonRecord`: the consumer folds again from its stored positions, and
after a few attempts the record is quarantined (snapshotter/quarantine.py).
"""

import json
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from itertools import islice, takewhile
from typing import Any, TypeVar

from eventlog.records import Record
from schemas import events as ev
from schemas.envelope import INITIAL_HEADER, INITIAL_VALUE, Event, EventDecodeError, decode_record
from schemas.ids import uuid7_ms
from schemas.quarantine import PASSTHROUGH, QuarantinedRecord
from schemas.settings import Settings
from snapshotter import versions
from snapshotter.audit import AuditRow, Burst, Bursts, Position, edit_row
from snapshotter.document import LetterDocument
from snapshotter.quarantine import Quarantine
from snapshotter.state import LetterState, PendingEnd, Session

log = logging.getLogger(__name__)
# A session ended by its gateway's drain or a log failure under it (ev.RECONNECTING) goes on if
# someone joins within this much record time: its users reconnect at once (y-websocket's
# backoff stays under a few seconds; a whole deployment's restart under a minute).
REJOIN_MS = 60_000
# A letter's creation and its initial content are made in one request (POST /v1/letters): their
# event ids are this close in time even when rendering a large content took a while. Only for
# records logged before the create marked them (INITIAL_HEADER): `_created_with`.
SAME_REQUEST_MS = 5_000
Json = dict[str, Any]
P = TypeVar("P", bound=ev.Payload)


@dataclass(frozen=True, slots=True)
class LetterRow:
    letter_id: str
    firm_id: str
    title: str
    created_by: str
    created_ms: int
    position: Position


@dataclass(frozen=True, slots=True)
class VersionRow:
    letter_id: str
    number: int
    content: str
    document_json: str
    ydoc_state: bytes
    position: Position  # offset = next offset folded in
    change_data: Json
    created_ms: int


@dataclass(frozen=True, slots=True)
class CommentOp:
    """One change to the comment tables, applied in log order (`store` maps kind to SQL)."""

    kind: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class StateRow:
    """A letter's working state as saved, frozen when `fold` decided to save it."""

    letter_id: str
    topic: str
    partition: int
    ydoc_state: bytes
    state_json: str


@dataclass(slots=True)
class BatchOutput:
    letters: list[LetterRow] = field(default_factory=list)
    versions: list[VersionRow] = field(default_factory=list)
    audit: list[AuditRow] = field(default_factory=list)
    comments: list[CommentOp] = field(default_factory=list)
    dirty: dict[str, LetterState] = field(default_factory=dict)
    saves: dict[str, StateRow] = field(default_factory=dict)  # the last save per letter
    states: list[StateRow] = field(default_factory=list)  # filled from `saves` by `fold`
    # After this batch, letters whose saved row lags their folded records (from that offset)
    # and letters whose row is current (`snapshotter_unsaved`): a lagging letter is caught up
    # when loaded, a current one is not.
    lagging: dict[str, int] = field(default_factory=dict)
    current: set[str] = field(default_factory=set)
    quarantined: list[QuarantinedRecord] = field(default_factory=list)


Handler = Callable[[LetterState, Event, Record, BatchOutput], None]


@dataclass(frozen=True, slots=True)
class SavePolicy:
    """When a letter's working state is saved: after `records` records or `size` bytes of
    them since its last save (and with every version, and when it is created). Both counted
    on the log's records, so the save points, and the rows, do not depend on batches."""

    records: int
    size: int

    @classmethod
    def of(cls, settings: Settings) -> "SavePolicy":
        return cls(settings.snapshotter_state_records, settings.snapshotter_state_bytes)


class Folder:
    """Folds records into rows, keeping the active letters' state in memory (LRU-bounded).

    With a `SavePolicy` (the snapshotter, which catches up letters whose state is behind),
    letters are saved by it; without one, every batch saves every letter it changed, so that
    a caller that adopts saved states as they are (tools) always finds them current.
    """

    def __init__(
        self, settings: Settings, max_cached: int = 2000, saving: SavePolicy | None = None
    ) -> None:
        self.field = settings.doc_field
        self.window_ms = int(settings.audit_edit_window_s * 1000)
        self.policy = versions.Policy(
            int(settings.autosave_activity_s * 1000), settings.autosave_updates
        )
        self.max_bytes = {"doc.update": settings.max_document_bytes}
        self.default_max_bytes = settings.max_message_bytes
        self.max_cached = max_cached
        self.saving = saving
        # The rows of letters just caught up: written with the next batch.
        self._carried: dict[str, StateRow] = {}
        self.letters: OrderedDict[str, LetterState] = OrderedDict()
        # Per partition, the cached letters folded past their saved row and when (their
        # `unsaved_since`), in that order: `stale` reads only those due.
        self._due: dict[int, dict[str, float]] = {}
        self.stats: Counter[str] = Counter()
        self.quarantine = Quarantine()  # outlives `forget`: it counts attempts across resumes
        self._handlers: dict[str, Handler] = {
            "doc.update": self._doc_update,
            "session.joined": self._joined,
            "session.left": self._left,
            "version.saved": self._named,
        }

    # -- cache -------------------------------------------------------------------------------

    def uncached(self, records: Iterable[Record]) -> set[str]:
        return {key for r in records if (key := _key(r)) and key not in self.letters}

    def adopt(self, states: Iterable[LetterState]) -> None:
        for state in states:
            self.letters[state.letter_id] = state

    def evict(self, partition: int, keep: Collection[str] = (), room: int = 0) -> list[StateRow]:
        """Drop least recently used letters (all but `keep`) until `room` more fit under
        `max_cached`; the rows of those unsaved are returned. Saved letters and those of
        `partition` (whose commit is about to be made) go first; then, if the cache is still
        over, unsaved letters of other partitions: a quiet partition's letters would otherwise
        stay past the bound until its next batch. Call it only when every record folded
        outside `partition` is committed: each row must then be written with a commit of its
        own partition (`partition`'s, or one leaving another's position where it is)."""
        excess = len(self.letters) + room - self.max_cached
        if excess <= 0:
            return []
        dropped: list[LetterState] = []
        for state in self.letters.values():
            if len(dropped) == excess:
                break
            if state.letter_id in keep or (state.unsaved and state.partition != partition):
                continue
            dropped.append(state)
        if len(dropped) < excess:
            others = (
                s
                for s in self.letters.values()
                if s.unsaved and s.partition != partition and s.letter_id not in keep
            )
            dropped += islice(others, excess - len(dropped))
        saves = [self.save(state) for state in dropped if state.unsaved]
        for state in dropped:
            del self.letters[state.letter_id]
        return saves

    def forget(self) -> None:
        """Drop every cached letter (after a failed commit their state is ahead of the store)."""
        self.letters.clear()
        self._carried.clear()
        self._due.clear()

    def save(self, state: LetterState, *, scheduled: bool = False) -> StateRow:
        """The row saving `state` as it is now (its commit must cover `state.covers`)."""
        state.saved(scheduled=scheduled)
        self._due.get(state.partition, {}).pop(state.letter_id, None)
        return _state_row(state)

    def stale(self, partition: int, older_than: float) -> list[StateRow]:
        """Rows saving the letters of `partition` unsaved since before `older_than`
        (time.monotonic), so a restart never has far to fold back for a quiet letter."""
        due = self._due.get(partition, {})
        old = [letter_id for letter_id, _ in takewhile(lambda d: d[1] < older_than, due.items())]
        return [self.save(self.letters[letter_id]) for letter_id in old]

    def unsaved(self, partition: int, committed: int) -> list[StateRow]:
        """Rows saving every letter of `partition` whose state is ahead of its row and covers
        only records before `committed` (an orderly stop)."""
        return [
            self.save(state)
            for state in self.letters.values()
            if state.partition == partition and state.unsaved and state.covers <= committed
        ]

    # -- catch-up ----------------------------------------------------------------------------

    def catch_up(
        self, states: Collection[LetterState], records: Iterable[Record], *, carry: bool = True
    ) -> list[StateRow]:
        """Fold into freshly loaded `states` their records after the offset each covers:
        records whose rows were committed already, so only the states change (and they are
        cached only if every record folds). Skips are not counted twice in `stats`. Returns
        the rows saving them caught up: written with the next `fold`'s output if `carry`, else
        by the caller."""
        behind = {s.letter_id: s for s in states}
        stats, out = self.stats.copy(), BatchOutput()
        self.adopt(states)
        try:
            for record in records:
                state = behind.get(_key(record))
                if state is not None and record.offset >= state.covers:
                    self._fold_record(record, out)
        except BaseException:
            for state in states:
                self.letters.pop(state.letter_id, None)
                self._due.get(state.partition, {}).pop(state.letter_id, None)
            raise
        finally:
            self.stats.clear()
            self.stats.update(stats)
        # Saved with the next commit (superseding saves by the policy on the way): a restart
        # then folds again only what follows, however soon it comes.
        rows = [self.save(state) for state in states]
        if carry:
            self._carried.update((row.letter_id, row) for row in rows)
        return rows

    # -- fold --------------------------------------------------------------------------------

    def fold(self, records: Iterable[Record]) -> BatchOutput:
        out = BatchOutput(saves=self._carried)
        self._carried = {}
        for record in records:
            self._fold_record(record, out)
        # A letter loaded from a row that does not say what it covers is saved now.
        for state in out.dirty.values():
            if self.saving is None or state.saved_covers is None:
                out.saves[state.letter_id] = self.save(state)
            if state.unsaved_from is not None:
                out.lagging[state.letter_id] = state.unsaved_from
            else:
                out.current.add(state.letter_id)
        out.current.update(out.saves.keys() - out.dirty.keys())  # caught up, not folded since
        out.states = list(out.saves.values())
        return out

    def _fold_record(self, record: Record, out: BatchOutput) -> None:
        if self.quarantine.skips(record):
            self._skip("quarantined", record, "failed too often")
            out.quarantined.append(self.quarantine.row(record))
            return
        try:
            self._fold_one(record, out)
        except PASSTHROUGH:
            raise
        except BaseException as exc:  # pycrdt panics are BaseExceptions
            raise self.quarantine.failed(record, exc) from exc

    def _fold_one(self, record: Record, out: BatchOutput) -> None:
        event = self._decode(record)
        if event is None:
            return
        created = event.type == "letter.created"
        state = self._state_for(event, record, out)
        if state is None or state.seen(event.envelope.id, event.type == "doc.update"):
            if state is not None:
                # A redelivery (at-least-once appends: a retry after a timeout, a rescue while
                # a stalled broker still held the first send) is expected, not bad input:
                # counted, logged at INFO, or a broker stall floods the log and `verify`.
                self._skip("duplicate", record, event.envelope.id, logging.INFO)
            return
        self.letters.move_to_end(state.letter_id)
        out.dirty[state.letter_id] = state
        if (since := state.folded(record)) is not None:
            self._due.setdefault(state.partition, {})[state.letter_id] = since
        state.clock_ms = max(state.clock_ms, record.timestamp)
        self._close(state, state.bursts.expire(state.clock_ms), out)
        version = state.versions.last_number
        if state.pending_end is not None:
            self._resume_or_end(state, event, record, out)
        handler = self._handlers.get(event.type, self._audited)
        handler(state, event, record, out)
        policy = self.saving
        if policy is not None and (
            created
            or state.versions.last_number != version  # its Yjs state is encoded already
            or state.unsaved_records >= policy.records
            or state.unsaved_bytes >= policy.size
        ):
            # Serialised now, not at commit time: the next batch may be folded (changing
            # this object) while this one is being committed.
            out.saves[state.letter_id] = self.save(state, scheduled=True)

    def _decode(self, record: Record) -> Event | None:
        if not record.headers and not record.value:
            self._skip("poison", record, "empty record")
            return None
        try:
            event = decode_record(record.key, record.value, record.headers)
        except EventDecodeError as exc:
            self._skip("poison", record, str(exc))
            return None
        if event.topic is not ev.Topic.LETTERS:
            self._skip("wrong_topic", record, f"{event.type} belongs to {event.topic}")
            return None
        if len(record.value) > self.max_bytes.get(event.type, self.default_max_bytes):
            self._skip("oversized", record, f"{event.type} of {len(record.value)} bytes")
            return None
        return event

    def _state_for(self, event: Event, record: Record, out: BatchOutput) -> LetterState | None:
        state = self.letters.get(event.letter_id)
        if event.type == "letter.created":
            if state is not None:
                # A state already past this record was loaded from another writer's save (a
                # second rebuild, the service): a re-fold of a known record, not bad input.
                known = record.offset < state.covers
                level = logging.INFO if known else logging.WARNING
                detail = "letter.created " + (
                    "folded already" if known else "for an existing letter"
                )
                self._skip("duplicate", record, detail, level)
                return None
            return self._create(event, record, out)
        if state is None:
            self._skip("unknown_letter", record, event.letter_id)
        elif event.envelope.firm != state.firm_id:
            self._skip("wrong_firm", record, f"{event.envelope.firm} != {state.firm_id}")
            return None
        return state

    def _create(self, event: Event, record: Record, out: BatchOutput) -> LetterState:
        payload = _payload(event, ev.LetterCreated)
        position = Position(record.topic, record.partition, record.offset)
        state = LetterState(
            event.letter_id,
            record.topic,
            record.partition,
            payload.firm_id,
            LetterDocument(self.field),
            Bursts(self.window_ms),
        )
        state.marks_initial = _marked(record)
        self.letters[event.letter_id] = state
        row = LetterRow(
            event.letter_id,
            payload.firm_id,
            payload.title,
            payload.created_by,
            record.timestamp,
            position,
        )
        out.letters.append(row)
        return state

    def _skip(self, reason: str, record: Record, detail: str, level: int = logging.WARNING) -> None:
        self.stats[reason] += 1
        log.log(
            level,
            "skipped record %s/%d@%d (%s): %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            detail[:300],
        )

    # -- handlers ----------------------------------------------------------------------------

    def _doc_update(
        self, state: LetterState, event: Event, record: Record, out: BatchOutput
    ) -> None:
        assert isinstance(event.payload, bytes)  # decode_record guarantees it for doc.update
        try:
            delta = state.doc.apply(event.payload)
        except ValueError as exc:  # pycrdt refused it, the document as before (`apply`);
            # anything else (a pyo3 panic, a refusal half applied) aborts the batch: quarantine
            self._skip("bad_update", record, str(exc))
            return
        if state.doc.dropped:  # pending parts that failed it (logged by `apply`)
            self.stats["dropped_pending"] += state.doc.dropped
        if delta.empty:
            self.stats["empty_update"] += 1
            return
        user = event.envelope.user
        # The letter's second event (the ids seen, fewer than RECENT_IDS), its first after
        # `letter.created`: the content it was created with, appended with it, or an edit.
        if len(state.recent_ids) == 2 and _created_with(state, record):
            at = record.timestamp
            burst = Burst(record.offset, record.offset, at, at, name=event.envelope.name)
            burst.add(record.offset, record.timestamp, delta)
            row = edit_row(state.letter_id, state.topic, state.partition, user, burst, initial=True)
            out.audit.append(row)
        else:
            # A burst is one session's typing: two tabs of one user are two bursts.
            conn = event.envelope.conn
            session = state.sessions.get(conn)
            in_session = conn if session is not None and session.user == user else None
            # Outside a session (a REST write: its writer may never join) the record names its
            # writer (NAME_HEADER); a session's rows are named by its join, as the projector's.
            name = "" if in_session is not None else event.envelope.name
            closed = state.bursts.edit(
                user, record.offset, record.timestamp, delta, in_session, name
            )
            if closed is not None:
                self._close(state, [(user, closed)], out)
        versions.record_update(state.versions, user, record.timestamp)
        if versions.autosave_due(state.versions, state.clock_ms, self.policy):
            self._version(state, versions.Kind.AUTOSAVE, event, record, out)

    def _joined(self, state: LetterState, event: Event, record: Record, out: BatchOutput) -> None:
        payload = _payload(event, ev.SessionJoined)
        state.sessions[payload.conn_id] = Session(event.envelope.user, record.timestamp)
        data = {"conn_id": payload.conn_id, "name": payload.user.name, "role": payload.role}
        out.audit.append(_row(state, event, record, "session-start", data))

    def _left(self, state: LetterState, event: Event, record: Record, out: BatchOutput) -> None:
        payload = _payload(event, ev.SessionLeft)
        session = state.sessions.pop(payload.conn_id, None)
        if session is None:
            self.stats["unknown_session"] += 1
        ended_ms = record.timestamp
        if payload.reason.startswith(ev.GATEWAY_GONE_REASON) or payload.reason in ev.RESCUED:
            # Logged late: the projector's, for a dead gateway's connection, once its sweep
            # noticed, a minute or more on (the envelope's `ts` is the gateway's last heartbeat;
            # a second such record, for a session no longer held, is dated alike); a gateway's
            # own when the log failed under the letter, appended by its rescue once the log was
            # back (the `ts` is when it closed the connection: a 110 s outage made a 134 s
            # session 244 s). Not before the session began.
            ended_ms = min(record.timestamp, event.envelope.ts)
            if session is not None:
                ended_ms = max(ended_ms, session.joined_ms)
        duration = payload.duration_ms if session is None else ended_ms - session.joined_ms
        data: dict[str, Any] = {
            "conn_id": payload.conn_id,
            "name": payload.user.name,
            "role": payload.role,
            "reason": payload.reason,
            "duration_ms": duration,
            "started_at_ms": None if session is None else session.joined_ms,
        }
        if ended_ms != record.timestamp:
            data["ended_at_ms"] = ended_ms  # the row's time is still the record's (its position)
        out.audit.append(_row(state, event, record, "session-end", data))
        user = event.envelope.user
        still_here = any(s.user == user for s in state.sessions.values())
        # A session this letter does not hold (a second session.left for the connection: the
        # projector logs one for a dead gateway's connections, possibly twice around a
        # rebalance, or before a gateway it thought dead logs its own) ends nobody's presence:
        # no session-end version, only its audit row and the user's edit bursts closed.
        if session is not None and not state.sessions:
            self._close(state, state.bursts.close(), out)
            if payload.reason in ev.RECONNECTING:
                # A deployment (or a log outage closing the letter's clients with 4503) would
                # otherwise cut a version of every open letter, though their users are back
                # within seconds: the next record decides.
                at = Position(record.topic, record.partition, record.offset)
                state.pending_end = PendingEnd(user, at, record.timestamp)
            else:
                self._version(state, versions.Kind.SESSION_END, event, record, out)
        elif not still_here:
            self._close(state, state.bursts.close(user), out)
        elif session is not None:  # the user is still here in another session: this one's
            self._close(state, state.bursts.close_session(session.user, payload.conn_id), out)

    def _resume_or_end(
        self, state: LetterState, event: Event, record: Record, out: BatchOutput
    ) -> None:
        """A session put off by a drain: a join soon enough continues it; any other record
        (nothing else has changed the letter since) cuts its session-end version as of it."""
        pending, state.pending_end = state.pending_end, None
        assert pending is not None
        if event.type == "session.joined" and record.timestamp - pending.timestamp_ms <= REJOIN_MS:
            return
        at, user = pending.position, pending.user
        self._cut(state, versions.Kind.SESSION_END, user, at, pending.timestamp_ms, out)

    def _named(self, state: LetterState, event: Event, record: Record, out: BatchOutput) -> None:
        label = _payload(event, ev.VersionSaved).label
        self._version(state, versions.Kind.NAMED, event, record, out, label)

    def _audited(self, state: LetterState, event: Event, record: Record, out: BatchOutput) -> None:
        """Comment and lock events: one audit row each (plus the comment tables)."""
        assert not isinstance(event.payload, bytes)
        data = event.payload.model_dump(mode="json")
        out.audit.append(_row(state, event, record, event.type, data))
        if event.type.startswith("comment."):
            # The comment's own times are the event's, as Redis has them (projector/fold.py):
            # a letter read cold from here shows the same `created_at`/`edited_at` (re-read RI:
            # the record's time differed by a millisecond). The audit row keeps the record's.
            values = (state.letter_id, event.envelope.user, event.envelope.ts, event.payload)
            out.comments.append(CommentOp(event.type, values))

    # -- rows --------------------------------------------------------------------------------

    def _version(
        self,
        state: LetterState,
        kind: versions.Kind,
        event: Event,
        record: Record,
        out: BatchOutput,
        label: str = "",
    ) -> None:
        at = Position(record.topic, record.partition, record.offset)
        self._cut(state, kind, event.envelope.user, at, record.timestamp, out, label)

    def _cut(
        self,
        state: LetterState,
        kind: versions.Kind,
        user: str,
        at: Position,
        timestamp_ms: int,
        out: BatchOutput,
        label: str = "",
    ) -> None:
        """A version as of the record at `at` (the document as folded up to it), unless the
        policy says the content has not changed. It closes every open burst first: an audit
        row never spans a version (its edits are the rows before it, whatever `since`)."""
        snapshot = state.doc.snapshot()
        if not versions.should_cut(state.versions, kind, snapshot.digest):
            versions.restart(state.versions, snapshot.digest)
            return
        self._close(state, state.bursts.close(), out)
        change_data = versions.cut(state.versions, kind, snapshot.digest, label)
        position = Position(at.topic, at.partition, at.offset + 1)
        row = VersionRow(
            state.letter_id,
            state.versions.last_number,
            snapshot.content,
            snapshot.document_json,
            state.doc.state(),
            position,
            change_data,
            timestamp_ms,
        )
        out.versions.append(row)
        data = {"version_number": row.number, **change_data}
        out.audit.append(AuditRow(state.letter_id, user, "version", data, timestamp_ms, at))

    def _close(self, state: LetterState, closed: list[tuple[str, Any]], out: BatchOutput) -> None:
        for user, burst in closed:
            out.audit.append(edit_row(state.letter_id, state.topic, state.partition, user, burst))


def _state_row(state: LetterState) -> StateRow:
    encoded = json.dumps(state.to_json(), sort_keys=True, separators=(",", ":"))
    return StateRow(state.letter_id, state.topic, state.partition, state.doc.state(), encoded)


def _key(record: Record) -> str:
    try:
        return record.key.decode()
    except UnicodeDecodeError:
        return ""


def _payload(event: Event, model: type[P]) -> P:
    assert isinstance(event.payload, model)  # decode_record validated it against the registry
    return event.payload


def _row(
    state: LetterState, event: Event, record: Record, change_type: str, data: Json
) -> AuditRow:
    position = Position(record.topic, record.partition, record.offset)
    return AuditRow(
        state.letter_id, event.envelope.user, change_type, data, record.timestamp, position
    )


def _marked(record: Record) -> bool:
    """Whether `record` is marked as one of a letter's creation (INITIAL_HEADER, value 1)."""
    # Another value is no mark: a record so headed (written past the gateway) neither makes an
    # update the content nor turns off the guess.
    return any(n == INITIAL_HEADER and v == INITIAL_VALUE for n, v in record.headers)


def _created_with(state: LetterState, record: Record) -> bool:
    """Whether the letter's first update, `record`, is the content it was created with: marked
    so by the create (INITIAL_HEADER). A letter whose `letter.created` is unmarked was logged
    before the mark: its first update is taken for the content when made in the same request
    (their ids' times), not for a backend's first write to a letter created empty."""
    if _marked(record):
        return True
    return not state.marks_initial and _same_request(*state.recent_ids)


def _same_request(created_id: str, update_id: str) -> bool:
    """Whether two event ids (UUIDv7, made by the gateway) were made within SAME_REQUEST_MS."""
    try:
        return abs(uuid7_ms(update_id) - uuid7_ms(created_id)) <= SAME_REQUEST_MS
    except ValueError:  # not UUIDs (records written past the gateway): not one request's
        return False
