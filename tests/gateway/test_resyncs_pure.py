"""gateway/live/resyncs.py without a gateway: a resync's own part, and what a letter holds."""

from typing import Any

from pycrdt import Doc, Text

from gateway.auth import Claims
from gateway.live.resyncs import HOLD_S, HOLD_USERS, HeldResyncs, HoldBudget, own_part
from gateway.wire.limits import Limits


def _claims(user: str) -> Claims:
    return Claims(sub=user, firm_id="firm-a", name=user, role="editor", exp=0.0)


def _text(doc: Doc[Any]) -> str:
    return str(doc.get("text", type=Text))


def test_the_own_part_leaves_out_the_structs_of_foreign_ids() -> None:
    server: Doc[Any] = Doc()
    alice: Doc[Any] = Doc(client_id=1)
    bob: Doc[Any] = Doc(client_id=2)
    bob.get("text", type=Text).insert(0, "bob ")
    alice.apply_update(bob.get_update())
    alice.get("text", type=Text).insert(4, "alice")
    part = own_part(server, alice.get_update(), foreign=[2])
    assert part is not None
    lone: Doc[Any] = Doc()
    lone.apply_update(part)
    assert _text(lone) == ""  # "alice" follows bob's text: pending without it
    lone.apply_update(bob.get_update())
    assert _text(lone) == "bob alice"
    assert own_part(server, bob.get_update(), foreign=[2]) is None  # nothing of its own


def test_held_parts_are_the_latest_per_user_bounded_and_expire() -> None:
    now = [0.0]
    held = HeldResyncs(Limits(max_message_bytes=100), HoldBudget(clock=lambda: now[0]))
    held.hold(_claims("alice"), "c1", b"first")
    held.hold(_claims("alice"), "c2", b"second")
    held.hold(_claims("bob"), "c3", b"x" * 101)  # larger than a message: not kept
    assert [h.update for h in held.others("bob")] == [b"second"]
    assert held.others("alice") == []
    for n in range(HOLD_USERS + 1):
        held.hold(_claims(f"u{n}"), f"c{n}", b"part")
    assert len(held.others("nobody")) == HOLD_USERS  # the oldest went first
    assert "alice" not in {h.claims.sub for h in held.others("nobody")}
    now[0] = HOLD_S + 1
    assert held.others("nobody") == []


def test_what_letters_hold_together_is_bounded_and_given_back() -> None:
    """One crafted resync per letter a user opens would keep a part in each: all letters of a
    gateway hold its budget at most, and a letter that leaves memory gives its parts back."""
    budget = HoldBudget(250)
    letters = [HeldResyncs(Limits(max_message_bytes=100), budget) for _ in range(3)]
    for letter in letters:
        letter.hold(_claims("mallory"), "c", b"x" * 100)
    assert [len(letter.others("alice")) for letter in letters] == [1, 1, 0]
    letters[0].clear()
    letters[2].hold(_claims("mallory"), "c", b"x" * 100)
    assert len(letters[2].others("alice")) == 1
    assert budget.held == 200


def test_parts_give_back_their_bytes_when_used_replaced_or_expired() -> None:
    now = [0.0]
    budget = HoldBudget(1000, clock=lambda: now[0])
    held = HeldResyncs(Limits(max_message_bytes=100), budget)
    held.hold(_claims("alice"), "c1", b"x" * 50)
    held.hold(_claims("alice"), "c2", b"x" * 30)  # replaces her first
    assert budget.held == 30
    held.hold(_claims("bob"), "c3", b"x" * 20)
    held.taken(held.others("alice"))  # bob's, used
    assert budget.held == 30
    now[0] = HOLD_S + 1
    assert held.others("nobody") == []
    assert budget.held == 0


def test_two_gateways_do_not_share_a_budget() -> None:
    """Two gateways in one process (tests run several): one's held parts leave the other's
    budget whole."""
    full, other = HoldBudget(100), HoldBudget(100)
    HeldResyncs(Limits(max_message_bytes=100), full).hold(_claims("mallory"), "c", b"x" * 100)
    letter = HeldResyncs(Limits(max_message_bytes=100), other)
    letter.hold(_claims("mallory"), "c", b"x" * 100)
    assert len(letter.others("alice")) == 1
    assert (full.held, other.held) == (100, 100)


def test_expired_parts_stop_counting_though_their_letters_never_look_again() -> None:
    """Letters expire their parts only when they hold or take one; a letter that stays loaded
    but sees no more resyncs must not keep its expired parts' bytes from the budget."""
    now = [0.0]
    budget = HoldBudget(250, clock=lambda: now[0])
    busy = [HeldResyncs(Limits(max_message_bytes=100), budget) for _ in range(2)]
    for letter in busy:  # one crafted resync in each of two letters, which stay loaded
        letter.hold(_claims("mallory"), "c", b"x" * 100)
    now[0] = HOLD_S + 1
    other = HeldResyncs(Limits(max_message_bytes=100), budget)
    other.hold(_claims("alice"), "c", b"y" * 100)
    other.hold(_claims("bob"), "c", b"y" * 100)
    assert len(other.others("carol")) == 2
    assert budget.held == 200
    for letter in busy:  # they look at last: what they give back was given already
        assert letter.others("alice") == []
    assert budget.held == 200
    other.clear()
    assert budget.held == 0
