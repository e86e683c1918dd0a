"""Running `steno-collab` as its own process, as an operator would, next to the test's writer."""

import asyncio
import os
import sys

from schemas.settings import Settings


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `steno-collab` process needs to see `settings`."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None and not isinstance(value, list | dict) and "jwt" not in name:
            env[f"STENO_{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    return env | extra


async def cli(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from steno_collab.cli import main; main()", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await cli(env, *args)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
