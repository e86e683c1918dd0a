"""The bytes of refused resyncs' parts a gateway holds (gateway/live/resyncs.py) are its own
Context's: two gateways in one process (as tests run them) share no budget, and a letter that
leaves memory gives its parts' bytes back."""

from pathlib import Path

from gateway.errors import TRY_AGAIN_LATER
from gateway.live.resyncs import HoldBudget
from schemas.settings import Settings
from tests.gateway.harness import Running, YClient, running_gateway, type_relayed
from tests.support import eventually


async def _hold_a_part(gw: Running) -> tuple[str, YClient]:
    """A letter holding alice's part (her resync needs bob's unlogged edit), kept in memory by
    carol, who stays."""
    letter, alice, bob = await gw.two_editors()
    carol = await gw.client(letter, user="carol")
    await carol.synced.wait()
    await alice.insert("alice ")
    await eventually(lambda: str(bob.text) == "alice ")
    await bob.insert("bob ")
    await eventually(lambda: str(alice.text) == "alice bob ")
    await alice.close()
    await bob.close()
    type_relayed(alice.doc, "A1 ", bob.doc)
    type_relayed(bob.doc, "B1 ", alice.doc)
    type_relayed(alice.doc, "A2", bob.doc)  # needs bob's B1: her part cannot be taken alone
    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.closed.wait()
    assert alice2.close_code == TRY_AGAIN_LATER
    return letter, carol


def _budget(gw: Running) -> HoldBudget:
    budget: HoldBudget = gw.app.state.gateway.ctx.held_resyncs
    return budget


def _held_by_rooms(gw: Running) -> int:
    return sum(len(h.update) for room in gw.app.state.gateway.rooms for h in room.held.others(""))


async def test_two_gateways_hold_parts_in_budgets_of_their_own(tmp_path: Path) -> None:
    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, partitions=1, idle_unload_s=0.2)

    async with running_gateway(settings("a")) as a, running_gateway(settings("b")) as b:
        _, carol_a = await _hold_a_part(a)
        assert _budget(a).held == _held_by_rooms(a) > 0
        assert _budget(b).held == 0
        _budget(a).limit = _budget(a).held  # a's budget is full: b's is not
        _, carol_b = await _hold_a_part(b)
        assert _budget(b).held == _held_by_rooms(b) > 0
        assert _budget(a).held == _held_by_rooms(a)  # each counts its own letters' parts

        await carol_a.close()  # a's letter leaves memory: its parts' bytes come back
        await eventually(lambda: not list(a.app.state.gateway.rooms))
        assert _budget(a).held == 0
        assert _budget(b).held == _held_by_rooms(b) > 0
        await carol_b.close()
