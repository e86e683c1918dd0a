"""What the auditor tools say of rows removed from PostgreSQL by hand (a truncated table): the
rebuild from the log that brings them back. REST answers 503 with it, the CLI one line."""

REBUILD_LETTER = (
    "rebuild them from the log with `steno-collab backfill snapshotter --letters {}` (every"
    " letter's: `--from-beginning --reset`)"
)
AUDIT_LOST = (
    "PostgreSQL holds this letter but not the audit row of its creation: its history rows were"
    " removed by hand (a truncated table?); " + REBUILD_LETTER
)
VERSIONS_LOST = (
    "PostgreSQL holds this letter's working state as of version {} but not every version up to"
    " it: its version rows were removed by hand (a truncated table?); " + REBUILD_LETTER
)
