"""What a letter's projections should hold, from one pass over its log (for `verify`).

One scan of the letter's records feeds the consumers' own folds, each up to the position the
projection it checks says it holds:
- the projector's document fold (`projector.document.fold_document`, as `replay` uses it),
  taken at every position asked for (each `letter_version`, Redis `ydoc:<id>:offset`);
- the snapshotter's fold (`snapshotter.fold.Folder`, as `history` uses it without PostgreSQL)
  up to the snapshotter's committed position: the `letters` row, audit rows, versions and
  comment changes its commits wrote (a burst still open there has no row yet, as in the table);
- the projector's letter fold (`projector.fold.fold_letter`) of the non-document events up to
  Redis's position: the threads it keeps in `comments:<id>`, and the `letter:<id>:meta` hash it
  writes from `letter.created`.
"""

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from eventlog.records import Record
from gateway.live.loader import scan
from projector.document import DocUpdate, fold_document
from projector.fold import Item, fold_letter
from projector.state import EMPTY_DOC
from projector.state import LetterState as ProjectorState
from schemas.envelope import EventDecodeError, decode_record
from schemas.events import Topic
from snapshotter.audit import AuditRow
from snapshotter.fold import CommentOp, Folder, LetterRow, VersionRow
from snapshotter.quarantine import PoisonRecord, Quarantine
from tools.replay import FOLD_CHUNK
from tools.sources import Sources

_BATCH = 1000  # records per snapshotter fold call


# Awaited with each position asked for and the state there.
DocAt = Callable[[int, bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Cut:
    """A version the snapshotter's fold cuts, without its document: `verify` checks the stored
    one against the log's at its position (`DocAt`), so each is dropped once cut."""

    number: int
    offset: int  # next offset folded in
    change_data: dict[str, Any]
    created_ms: int

    @classmethod
    def of(cls, row: VersionRow) -> "Cut":
        return cls(row.number, row.position.offset, row.change_data, row.created_ms)


@dataclass
class Folded:
    letter: LetterRow | None = None  # its `letters` row, once the snapshotter folded the created
    audit: list[AuditRow] = field(default_factory=list)
    versions: list[Cut] = field(default_factory=list)
    comments: list[CommentOp] = field(default_factory=list)
    projector: ProjectorState | None = None  # folded up to `projector_at`, without document


async def fold_letter_log(
    src: Sources,
    letter_id: str,
    docs_at: Collection[int],
    doc_at: DocAt,
    snapshotter_at: int | None,
    projector_at: int | None,
    quarantined: Collection[int] = (),
) -> Folded:
    """The letter's log folded once: the document at each of `docs_at`, given to `doc_at` in
    position order as the fold passes it (not kept: a long letter has many; awaited, so that
    what is compared with it can be read meanwhile), the snapshotter's rows
    from the records below `snapshotter_at` (skipping the offsets it `quarantined`), and the
    projector's state below `projector_at` (None: not wanted)."""
    poison = Quarantine(max_attempts=1)  # outlives a restart, as in `history`
    while True:
        try:
            return await _fold(src, letter_id, docs_at, doc_at, snapshotter_at, projector_at,
                               quarantined, poison)  # fmt: skip
        except PoisonRecord:
            # A record the snapshotter's fold raises on and the snapshotter did not list:
            # folded again from the start with it skipped (no half-folded state survives).
            continue


async def _fold(
    src: Sources,
    letter_id: str,
    docs_at: Collection[int],
    on_doc: DocAt,
    snapshotter_at: int | None,
    projector_at: int | None,
    quarantined: Collection[int],
    poison: Quarantine,
) -> Folded:
    out = Folded()
    folder = Folder(src.settings)
    folder.quarantine = poison
    field_name, skipped = src.settings.doc_field, set(quarantined)
    stops = sorted(set(docs_at))
    want = max([*stops, snapshotter_at or 0, projector_at or 0], default=0)
    state, updates = EMPTY_DOC, list[DocUpdate]()
    batch, items = list[Record](), list[Item]()

    async def doc_at(position: int) -> None:
        nonlocal state, updates
        if updates:
            state, updates = fold_document(state, updates, field_name, attribute=False).state, []
        await on_doc(position, state)

    def snapshot(records: list[Record]) -> None:
        rows = folder.fold(records)
        out.letter = next((r for r in rows.letters if r.letter_id == letter_id), out.letter)
        out.audit += rows.audit
        out.versions += map(Cut.of, rows.versions)
        out.comments += rows.comments

    async for record in scan(src.log, src.letters_topic, letter_id, None, want):
        while stops and stops[0] <= record.offset:
            await doc_at(stops.pop(0))
        if snapshotter_at is not None and record.offset < snapshotter_at:
            if record.offset in skipped and not poison.skips(record):
                poison.failed(record, RuntimeError("quarantined by the snapshotter"))
            batch.append(record)
            if len(batch) >= _BATCH:
                snapshot(batch)
                batch = []
        try:
            event = decode_record(record.key, record.value, record.headers)
        except EventDecodeError:
            continue  # poison: every consumer skips it too
        if event.type == "doc.update" and isinstance(event.payload, bytes):
            updates.append(DocUpdate(record.offset, "", record.timestamp, event.payload))
            if len(updates) >= FOLD_CHUNK:
                state, updates = (
                    fold_document(state, updates, field_name, attribute=False).state,
                    [],
                )
        elif projector_at is not None and record.offset < projector_at:
            items.append(Item(Topic.LETTERS, record.offset, event))
    for position in stops:
        await doc_at(position)
    snapshot(batch)
    if projector_at is not None:
        out.projector = ProjectorState(letter_id)
        fold_letter(out.projector, items, field_name)
    return out
