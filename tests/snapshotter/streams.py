"""A long, seeded, realistic stream of letter events (sessions, edit bursts, comments, locks,
named saves) with record times that open and close bursts and autosaves."""

import random
from collections import Counter
from dataclasses import dataclass, field

from schemas.envelope import Event
from tests.snapshotter.scripts import LetterScript

USERS = ["alice", "bob", "carol", "dave"]
WORDS = ["claim", "damages", "invoice", "settlement", "Dear Sir,", "pursuant", "notice", " "]


@dataclass
class Stream:
    """Chunks of (event, seconds to advance the log clock before appending it)."""

    chunks: list[list[tuple[Event, float]]] = field(default_factory=list)
    produced: Counter[str] = field(default_factory=Counter)


class LetterStream:
    def __init__(self, index: int, rng: random.Random) -> None:
        self.script = LetterScript(f"letter-{index:03d}")
        self.rng = rng
        self.online: dict[str, str] = {}  # conn -> user
        self.conns = 0
        self.paragraphs = 0

    def step(self) -> Event:
        roll = self.rng.random()
        if not self.online or (roll < 0.04 and len(self.online) < 3):
            return self._join()
        if roll < 0.08:
            return self._leave()
        user = self.rng.choice(sorted(self.online.values()))
        if roll < 0.11:
            return self._comment(user)
        if roll < 0.12:
            return self.script.lock(user, f"p{self.rng.randrange(5)}")
        if roll < 0.125:
            return self.script.save(user, f"save {self.rng.randrange(100)}")
        return self._edit(user)

    def _join(self) -> Event:
        self.conns += 1
        conn = f"{self.script.letter_id}-c{self.conns}"
        user = self.rng.choice(USERS)
        self.online[conn] = user
        return self.script.joined(user, conn)

    def _leave(self) -> Event:
        conn = self.rng.choice(sorted(self.online))
        return self.script.left(self.online.pop(conn), conn)

    def _comment(self, user: str) -> Event:
        n = self.rng.randrange(1_000_000)
        return self.script.comment(user, f"t{n}", f"m{n}", self.rng.choice(WORDS))

    def _edit(self, user: str) -> Event:
        if self.paragraphs == 0 or self.rng.random() < 0.08:
            self.paragraphs += 1
            return self.script.paragraph(user, self.rng.choice(WORDS))
        index = self.rng.randrange(self.paragraphs)
        length = len(self.script._text(index))
        if length > 3 and self.rng.random() < 0.25:
            return self.script.delete(user, index, self.rng.randrange(length - 2), 2)
        return self.script.type_text(user, index, self.rng.randrange(length + 1), "ab")


def build_stream(seed: int, letters: int, events: int, chunks: int) -> Stream:
    rng = random.Random(seed)
    stream = Stream()
    active = [LetterStream(i, rng) for i in range(letters)]
    timeline: list[tuple[Event, float]] = [(letter.script.created(), 0.0) for letter in active]
    for _ in range(events):
        letter = rng.choice(active)
        gap = rng.choice([0.0, 0.2, 0.5, 1.0, 2.0, 7.0])
        timeline.append((letter.step(), gap))
    for event, _ in timeline:
        stream.produced[event.type] += 1
    size = -(-len(timeline) // chunks)
    stream.chunks = [timeline[i : i + size] for i in range(0, len(timeline), size)]
    return stream
