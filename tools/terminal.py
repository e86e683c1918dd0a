"""Text outputs are read on terminals: what editors and clients wrote (comment bodies, quotes,
labels, names, the letter itself) must not steer them. Control characters (C0, DEL, C1: colour,
cursor moves, OSC titles, `\\r` overwriting a line) and the bidi overrides that reorder what is
shown become visible escapes (`\\x1b`, `\\u202e`). JSON outputs need none of this (json.dumps
escapes controls itself)."""

_CONTROLS = [*range(0x20), *range(0x7F, 0xA0)]  # Unicode category Cc
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]  # embeddings, overrides, isolates
_ESCAPES = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _BIDI}
_LINES = {c: escape for c, escape in _ESCAPES.items() if c not in (ord("\n"), ord("\t"))}


def visible(text: str) -> str:
    """One line of output: every control character escaped, newlines included."""
    return text.translate(_ESCAPES)


def visible_lines(text: str) -> str:
    """Multi-line document text: its newlines and tabs kept (a letter's own layout, harmless
    on a terminal), every other control character escaped."""
    return text.translate(_LINES)
