"""The edit rows the snapshotter stored for a letter (table `collaboration`), and the name a
REST writer's token gives: the audit tests of writers that never joined."""

from typing import Any

import asyncpg

from schemas.settings import Settings

NAME = "Drafting Bot"


async def stored_edits(settings: Settings, letter: str, *, initial: bool) -> list[tuple[str, Any]]:
    """(user_id, change_data.name) of the letter's edit rows as the snapshotter stored them: its
    initial content's, or all the others."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        stored = await conn.fetch(
            "SELECT user_id, change_data->>'name' AS name FROM collaboration"
            " WHERE letter_id = $1 AND change_type = 'edit'"
            f" AND {'' if initial else 'NOT '}change_data ? 'initial'",
            letter,
        )
    finally:
        await conn.close()
    return [(r["user_id"], r["name"]) for r in stored]
