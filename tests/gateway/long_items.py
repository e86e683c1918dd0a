"""A letter whose text is one long item: an update cutting it weighs much in split cost."""

from tests.gateway.harness import Running, YClient
from tests.support import eventually

LONG = 100_000  # one item of Alice's: each cut in it weighs ~10^5 clocks


async def long_letter(gw: Running) -> tuple[str, YClient]:
    """A letter whose text is one long item of Alice's (pasted: it cost nothing), logged."""
    letter = await gw.create_letter()
    alice = await gw.client(letter, user="alice")
    await alice.synced.wait()
    heard = len(alice.updates)
    await alice.insert("x" * LONG)
    await eventually(lambda: len(alice.updates) > heard)  # her echo: logged
    return letter, alice
