"""Structure-aware fuzz: well-formed updates with arbitrary references, checked against the
letter's DocShape as the gateway does. Whatever is accepted must apply to pycrdt on that state.

Byte mutation rarely yields a well-formed update that points somewhere odd (a parent that is a
string, an origin in another type, a GC'd neighbour); these are built on purpose here.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.preparse import DocShape, Limits, ProtocolError, check_state_vector

from . import lib0
from .seeds import FUZZ, assert_applies
from .structured import BASES, NEW_CLIENT, state_vector, structs

LIMITS = Limits()


@st.composite
def attacks(draw: st.DrawFn) -> tuple[bytes, bytes]:
    base = draw(st.sampled_from(BASES))
    sv = check_state_vector(state_vector(base), LIMITS)
    ids = [(client, clock) for client, end in sv.items() for clock in range(0, end, 1)]
    ids = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=8, unique=True))
    client = draw(st.sampled_from([NEW_CLIENT, *sv]))
    first = max(0, sv.get(client, 0) + draw(st.sampled_from([0, 0, 0, -1, 1])))
    deletes = b"\x00"
    if draw(st.booleans()):
        target, clock = draw(st.sampled_from(ids))
        deletes = b"\x01" + lib0.uint(target) + b"\x01" + lib0.uint(clock) + b"\x01"
    update = lib0.update((client, first, draw(structs(ids, client, first))), deletes=deletes)
    return base, update


@FUZZ
@given(attacks())
def test_structured_updates_accepted_by_the_shape_apply(case: tuple[bytes, bytes]) -> None:
    base, update = case
    try:
        DocShape.from_update(base).check(update, LIMITS)
    except ProtocolError:
        return
    assert_applies(update, base)
