"""A `steno-collab` command run by a test: its environment, the command as a process or in
this one (`Call`, for refusals made before anything starts), and the gateway as a process."""

import asyncio
import os
import secrets
import subprocess
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from steno_collab.cli import main
from tests.support import CLI, ROOT, gateway_ready, spawn_listening


def steno_env(tmp_path: Path, **steno: str) -> dict[str, str]:
    """This process's environment without its STENO_* settings, a data directory under
    `tmp_path`, one partition, and `steno`'s as STENO_<KEY>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_DATA_DIR": str(tmp_path / "steno"), "STENO_PARTITIONS": "1"}
    env["STENO_JWT_SECRET"] = secrets.token_hex(32)  # the gateway refuses the public default
    return env | {f"STENO_{key.upper()}": value for key, value in steno.items()}


@asynccontextmanager
async def gateway_process(env: dict[str, str], stderr: int) -> AsyncIterator[tuple[Process, int]]:
    """`steno-collab gateway` on a free port, once it listens there and answers /readyz; killed
    if still running."""

    async def start(port: int) -> Process:
        return await asyncio.create_subprocess_exec(
            *CLI, "gateway", "--host", "127.0.0.1", "--port", str(port), env=env, cwd=ROOT,
            stderr=stderr,
        )  # fmt: skip

    proc, port = await spawn_listening(start, gateway_ready)
    try:
        yield proc, port
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def run_steno(tmp_path: Path, *args: str, **steno: str) -> tuple[int, str, str]:
    """`steno-collab ARGS` as a real process with `steno`'s settings: its status, stdout, stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {"STENO_DATA_DIR": str(tmp_path / "steno"), "STENO_JWT_SECRET": secrets.token_hex(32)}
    env |= {f"STENO_{key.upper()}": value for key, value in steno.items()}
    done = subprocess.run(
        [*CLI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


class Call:
    """`run_steno` in this process, for refusals made before anything starts (the settings, a URL's
    form): the same `main`, its exit status and output, without ~2 s of interpreter and imports
    per case. Each test keeps one case as a real process (`process=True`: `run_steno`)."""

    def __init__(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.tmp_path, self.monkeypatch, self.capsys = tmp_path, monkeypatch, capsys

    def __call__(self, *args: str, process: bool = False, **steno: str) -> tuple[int, str, str]:
        if process:
            return run_steno(self.tmp_path, *args, **steno)
        for name in [name for name in os.environ if name.startswith("STENO_")]:
            self.monkeypatch.delenv(name)
        self.monkeypatch.setenv("STENO_DATA_DIR", str(self.tmp_path / "steno"))
        self.monkeypatch.setenv("STENO_JWT_SECRET", secrets.token_hex(32))
        for key, value in steno.items():
            self.monkeypatch.setenv(f"STENO_{key.upper()}", value)
        self.capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out, err = self.capsys.readouterr()
        assert isinstance(exited.value.code, int), exited.value.code
        return exited.value.code, out, err


@pytest.fixture
def call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Call:
    return Call(tmp_path, monkeypatch, capsys)


def one_line(err: str) -> str:
    """The one line of `err`, no traceback."""
    assert "Traceback" not in err, err
    [line] = err.splitlines()
    return line
