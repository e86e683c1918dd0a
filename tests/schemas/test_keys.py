"""The Redis keys services share are deployed data: each string is pinned here, so a change to
one is a deliberate edit of this test, not a side effect."""

from fnmatch import fnmatchcase

from schemas import keys


def test_each_shared_key_is_spelled_as_deployed() -> None:
    assert keys.ydoc_key("L-1") == "ydoc:L-1"
    assert keys.ydoc_offset_key("L-1") == "ydoc:L-1:offset"
    assert keys.meta_key("L-1") == "letter:L-1:meta"
    assert keys.connections_key("L-1") == "letter:L-1:connections"
    assert keys.connection_key("c-1") == "connection:c-1"
    assert keys.presence_key("L-1") == "presence:L-1"
    assert keys.comments_key("L-1") == "comments:L-1"
    assert keys.recent_key("L-1") == "recent:L-1"
    assert keys.alive_key("gw-1") == "gateway:gw-1:alive"
    assert keys.notes_key("firm-1", "u-1") == "notifications:firm-1:u-1"


def test_notes_keys_keep_ids_with_colons_apart() -> None:
    assert keys.notes_key("a:b", "c") == "notifications:a%3Ab:c"
    assert keys.notes_key("a", "b:c") == "notifications:a:b%3Ac"


def test_the_wipe_patterns_match_every_live_state_key() -> None:
    assert keys.LIVE_STATE_PATTERNS == (
        "ydoc:*",
        "letter:*:meta",
        "letter:*:connections",
        "presence:*",
        "connection:*",
        "comments:*",
        "recent:*",
        "notifications:*",
    )
    written = [
        keys.ydoc_key("L:1"),
        keys.ydoc_offset_key("L:1"),
        keys.meta_key("L:1"),
        keys.connections_key("L:1"),
        keys.connection_key("c:1"),
        keys.presence_key("L:1"),
        keys.comments_key("L:1"),
        keys.recent_key("L:1"),
        keys.notes_key("f", "u"),
        keys.notes_key("f", "u") + ":order",
    ]
    for key in written:
        assert any(fnmatchcase(key, p) for p in keys.LIVE_STATE_PATTERNS), key
    assert not any(fnmatchcase(keys.alive_key("gw"), p) for p in keys.LIVE_STATE_PATTERNS)
