"""Outside dev mode `steno-collab gateway` refuses an HS* secret anyone knows or could guess:
the public default or one shorter than 32 bytes. One stderr line naming STENO_JWT_SECRET (never
the secret), exit status 2, as the other configuration errors."""

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from schemas.settings import Settings
from steno_collab.commands.gateway import weak_secret
from tests.cli_env import gateway_process, steno_env
from tests.support import CLI, ROOT, free_port

DEFAULT = Settings.model_fields["jwt_secret"].get_default().get_secret_value()


async def _refused(env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *CLI, "gateway", "--host", "127.0.0.1", "--port", str(free_port()), env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:  # serving: it accepted the secret
            proc.kill()
            await proc.wait()
    assert proc.returncode == 2, err
    return err.decode()


@pytest.mark.parametrize("secret", [None, DEFAULT, "x" * 31])
async def test_gateway_refuses_the_default_or_a_short_secret(
    tmp_path: Path, secret: str | None
) -> None:
    env = steno_env(tmp_path)
    env.pop("STENO_JWT_SECRET")
    env.pop("STENO_DEV", None)
    if secret is not None:
        env["STENO_JWT_SECRET"] = secret
    err = await _refused(env)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("steno-collab gateway: STENO_JWT_SECRET "), err
    assert DEFAULT not in err and "x" * 31 not in err


@pytest.mark.parametrize(
    "steno",
    [
        {"jwt_secret": "y" * 32},  # 32 bytes: the minimum
        {"dev": "true", "jwt_secret": DEFAULT},  # dev mode mints demo tokens anyway
    ],
)
async def test_gateway_starts_with_a_32_byte_secret_or_in_dev_mode(
    tmp_path: Path, steno: dict[str, str]
) -> None:
    env = steno_env(tmp_path, **steno)
    async with gateway_process(env, asyncio.subprocess.DEVNULL) as (proc, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/readyz")).status_code == 200
        assert proc.returncode is None


def test_only_hs_algorithms_need_a_strong_secret() -> None:
    assert weak_secret(Settings(jwt_algorithms=["HS256", "RS256"])) is not None
    assert weak_secret(Settings(jwt_secret=secrets.token_hex(16))) is None  # 32 hex characters
    assert weak_secret(Settings(jwt_algorithms=["RS256"], jwt_public_key="unused")) is None
