"""The diff's attribution (tools/diff.py `_Tracker`), pure: comparing only what lies between the
common prefix and suffix of each run gives the hunks and authors of a whole-text comparison."""

import difflib
import random

import pytest

from tools.diff import _Char, _common_ends, _hunks, _Tracker

WORDS = ["the", "claim", "Sir", "we", "write", "about", "a", "an", "of", "Regards", "\n"]


class _WholeText(_Tracker):
    """Attribution by difflib over the whole text (what `_Tracker` did before)."""

    def advance(self, new: str, user: str) -> None:
        matcher = difflib.SequenceMatcher(None, self.text, new, autojunk=False)
        chars: list[_Char] = []
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op == "equal":
                chars += self.chars[a0:a1]
                continue
            for old in self.chars[a0:a1]:
                if old.origin is not None:
                    self.deleted_by.setdefault(old.origin, set()).add(user)
            chars += [_Char(None, user) for _ in range(b1 - b0)]
        self.text, self.chars = new, chars


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).replace(" \n ", "\n")


def _edit(rng: random.Random, text: str) -> str:
    """One user's run: a few local inserts and deletes near one place, as editors make them."""
    at = rng.randrange(len(text) + 1)
    for _ in range(rng.randint(1, 4)):
        at = min(max(at + rng.randint(-20, 20), 0), len(text))
        if rng.random() < 0.5 and at < len(text):
            text = text[:at] + text[at + rng.randint(1, 12) :]
        else:
            text = text[:at] + _text(rng, rng.randint(1, 3)) + text[at:]
    return text


@pytest.mark.parametrize("seed", range(100))
def test_stripping_the_common_ends_keeps_the_hunks(seed: int) -> None:
    rng = random.Random(seed)
    start = _text(rng, rng.randint(0, 300))
    stripped, whole, text = _Tracker(start), _WholeText(start), start
    for run in range(rng.randint(1, 8)):
        text = _edit(rng, text)
        user = f"user-{run % 3}"
        stripped.advance(text, user)
        whole.advance(text, user)
    assert stripped.text == whole.text == text
    assert _hunks(start, text, stripped) == _hunks(start, text, whole)


@pytest.mark.parametrize(
    ("a", "b", "ends"),
    [
        ("", "", (0, 0)),
        ("abc", "abc", (3, 0)),
        ("aa", "aaa", (2, 0)),  # the suffix never overlaps the prefix
        ("xab", "yab", (0, 2)),
        ("abXcd", "abYYcd", (2, 2)),
        ("abc", "", (0, 0)),
    ],
)
def test_common_ends(a: str, b: str, ends: tuple[int, int]) -> None:
    assert _common_ends(a, b) == ends
