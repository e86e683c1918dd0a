"""The test broker's start (tests/conftest.py `start_tansu`): ready means this broker listens,
not that something answers on its port. With two test workers another worker's broker took a
port between `free_port` and this one's bind; this one exited, and a test froze a dead process
while its appends went to the other broker."""

from pathlib import Path

import pytest

from steno_collab.processes import ServiceStartError
from tests.conftest import start_tansu


async def test_a_broker_that_could_not_bind_its_port_is_not_ready(tmp_path: Path) -> None:
    first, bootstrap = await start_tansu(tmp_path / "first.log")
    try:
        taken = int(bootstrap.rsplit(":", 1)[1])
        with pytest.raises(ServiceStartError):  # the first answers there, but it is not this one
            await start_tansu(tmp_path / "second.log", taken)
    finally:
        await first.stop(timeout=5)
