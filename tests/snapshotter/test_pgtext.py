"""What PostgreSQL cannot hold becomes U+FFFD, and nothing else changes (snapshotter/pgtext.py)."""

import json

from snapshotter import pgtext


def test_text_replaces_nul_and_lone_surrogates_only() -> None:
    assert pgtext.text("a\x00b\x00") == "a\ufffdb\ufffd"
    assert pgtext.text("x\ud800y\udfffz") == "x\ufffdy\ufffdz"
    kept = ["plain", "Zoë \U0001f600", "\\u0000 typed", ""]
    assert [pgtext.text(t) for t in kept] == kept


def test_jsonb_cleans_escapes_and_keeps_pairs_and_typed_backslashes() -> None:
    value = {"a\x00": ["\x00", "\ud800", "\U0001f600", "\\u0000", "\\\ud800", 1, None]}
    cleaned = json.loads(pgtext.jsonb(json.dumps(value)))
    assert cleaned == {
        "a\ufffd": ["\ufffd", "\ufffd", "\U0001f600", "\\u0000", "\\\ufffd", 1, None]
    }
    assert pgtext.stored(value) == cleaned
    assert pgtext.stored({"n": [float("nan"), float("inf"), 1.5]}) == {"n": [None, None, 1.5]}
    plain = json.dumps({"text": "nothing to clean", "n": [1, 2]})
    assert pgtext.jsonb(plain) is plain  # not decoded at all


def test_rows_clean_strings_and_leave_other_arguments() -> None:
    assert pgtext.rows([("a\x00", b"\x00", 3, None)]) == [("a\ufffd", b"\x00", 3, None)]
