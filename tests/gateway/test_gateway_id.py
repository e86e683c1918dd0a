"""Each gateway run has an id of its own, also under a fixed `STENO_GATEWAY_ID`: the projector
reaps the connections of a run whose `gateway:<id>:alive` key is gone (projector/stale.py), and
a gateway restarted under the same id within the key's life refreshed its dead run's key, so
that run's connections stayed present for ever (found with kill -9 and a restart in 2 s)."""

import os
import socket

from gateway.service import new_gateway_id
from schemas.settings import Settings


def test_a_fixed_gateway_id_is_a_prefix_each_run_extends() -> None:
    settings = Settings(gateway_id="gateway-1")
    first, restarted = new_gateway_id(settings), new_gateway_id(settings)
    assert first != restarted
    assert first.startswith("gateway-1-") and restarted.startswith("gateway-1-")


def test_an_unset_id_names_the_host_and_process() -> None:
    assert new_gateway_id(Settings()).startswith(f"{socket.gethostname()}-{os.getpid()}-")
