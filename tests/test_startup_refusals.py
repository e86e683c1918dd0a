"""Every way to start a service refuses a bad setting or an unusable data dir with one stderr line
and status 2, as tests/test_operator_errors.py has it for `steno-collab`: `python -m snapshotter`
and `python -m projector` too (a bad setting was a pydantic traceback there, a data dir that is a
file a NotADirectoryError one), and a folder the services make in the data dir (`log`, and `dev`'s
`redis` and `postgres`) that is a file (a FileExistsError traceback, status 1, restarted for
ever by a supervisor)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from steno_collab.cli import main

ROOT = Path(__file__).resolve().parents[1]
# Stores that never answer: every refusal here comes before any connection.
STORES = {"redis_url": "redis://127.0.0.1:1/0", "database_url": "postgresql://127.0.0.1:1/x"}


def _env(**steno: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env["STENO_JWT_SECRET"] = secrets.token_hex(32)
    return env | {f"STENO_{key.upper()}": value for key, value in steno.items()}


def _module(name: str, **steno: str) -> tuple[int, str, str]:
    """`python -m <name>`, as a process, with these STENO_* settings only."""
    done = subprocess.run(
        [sys.executable, "-m", name], env=_env(**steno), cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, **steno: str
) -> tuple[int, str, str]:
    """`steno-collab ARGS` in this process (the same `main`, without a process's ~2 s)."""
    for name in [name for name in os.environ if name.startswith("STENO_")]:
        monkeypatch.delenv(name)
    for name, value in _env(**steno).items():
        if name.startswith("STENO_"):
            monkeypatch.setenv(name, value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    assert isinstance(exited.value.code, int), exited.value.code
    return exited.value.code, out, err


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    [line] = err.splitlines()
    return line


# -- python -m a service: a bad setting ---------------------------------------------------------


@pytest.mark.parametrize("service", ["snapshotter", "projector"])
def test_python_m_a_service_names_a_bad_setting_in_one_line(tmp_path: Path, service: str) -> None:
    code, out, err = _module(service, data_dir=str(tmp_path / "steno"), port="70000", **STORES)
    assert (code, out) == (2, ""), err
    assert _one_line(err).startswith(f"steno-collab {service}: invalid setting STENO_PORT: "), err


def test_python_m_projector_names_its_own_settings_by_their_prefix(tmp_path: Path) -> None:
    bad = {"projector_metrics_port": "port"}
    code, _, err = _module("projector", data_dir=str(tmp_path / "steno"), **bad, **STORES)
    assert code == 2, err
    assert _one_line(err).startswith(
        "steno-collab projector: invalid setting STENO_PROJECTOR_METRICS_PORT: "
    )


def test_python_m_snapshotter_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "not-a-dir"
    afile.write_text("kept")
    code, out, err = _module("snapshotter", data_dir=str(afile), **STORES)
    assert (code, out) == (2, ""), err
    assert _one_line(err) == f"steno-collab snapshotter: STENO_DATA_DIR {afile} is not a directory"
    assert afile.read_text() == "kept"


def test_python_m_snapshotter_without_a_database_says_which_setting(tmp_path: Path) -> None:
    code, _, err = _module("snapshotter", data_dir=str(tmp_path / "steno"))
    assert code == 2, err
    assert _one_line(err) == "steno-collab snapshotter: set STENO_DATABASE_URL"


# -- a folder the services make, a file ---------------------------------------------------------


def _with_a_file(tmp_path: Path, folder: str) -> tuple[Path, Path]:
    data_dir = tmp_path / "steno"
    data_dir.mkdir()
    (afile := data_dir / folder).write_text("kept")
    return data_dir, afile


@pytest.mark.parametrize("service", ["snapshotter", "projector"])
def test_python_m_a_service_refuses_a_log_folder_that_is_a_file(
    tmp_path: Path, service: str
) -> None:
    data_dir, afile = _with_a_file(tmp_path, "log")
    code, out, err = _module(service, data_dir=str(data_dir), **STORES)
    assert (code, out) == (2, ""), err
    assert _one_line(err) == (
        f"steno-collab {service}: STENO_DATA_DIR {data_dir}: {afile} is not a directory"
    )
    assert afile.read_text() == "kept"


# What each command makes in the data dir (the embedded log's `log`, dev's servers' folders).
MADE = [
    (["gateway", "--port", "0"], "log"),
    (["projector", "--metrics-port", "0"], "log"),
    (["snapshotter", "--metrics-port", "0"], "log"),
    (["dev", "--port", "0"], "log"),
    (["dev", "--port", "0"], "redis"),
    (["dev", "--port", "0"], "postgres"),
]


@pytest.mark.parametrize(("args", "folder"), MADE, ids=[f"{a[0]}-{f}" for a, f in MADE])
def test_a_folder_the_command_makes_that_is_a_file_is_one_line_and_status_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    folder: str,
) -> None:
    data_dir, afile = _with_a_file(tmp_path, folder)
    stores = {} if args[0] == "dev" else STORES  # dev: its own servers, in the data dir
    code, out, err = _cli(monkeypatch, capsys, *args, data_dir=str(data_dir), **stores)
    assert (code, out) == (2, ""), err
    assert _one_line(err) == (
        f"steno-collab {args[0]}: STENO_DATA_DIR {data_dir}: {afile} is not a directory"
    )
    assert afile.read_text() == "kept"


def test_dev_minds_only_the_folders_of_servers_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With Redis and PostgreSQL elsewhere, files named `redis` and `postgres` are in no way."""
    data_dir, _ = _with_a_file(tmp_path, "redis")
    (data_dir / "postgres").write_text("kept")
    (data_dir / "log").write_text("kept")
    code, _, err = _cli(monkeypatch, capsys, "dev", "--port", "0", data_dir=str(data_dir), **STORES)
    assert code == 2, err
    assert _one_line(err).endswith(f"{data_dir / 'log'} is not a directory")  # only the log's


def test_a_kafka_log_minds_no_log_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Only the embedded log lives there: with Kafka the snapshotter goes on (to PostgreSQL,
    which does not answer: status 1, README)."""
    data_dir, _ = _with_a_file(tmp_path, "log")
    kafka = {"log_url": "kafka://127.0.0.1:1"}
    args = ["snapshotter", "--metrics-port", "0"]
    code, _, err = _cli(monkeypatch, capsys, *args, data_dir=str(data_dir), **kafka, **STORES)
    assert code == 1, err
    assert _one_line(err).startswith("steno-collab snapshotter: PostgreSQL at 127.0.0.1:1: ")


@pytest.mark.parametrize("inside", [False, True], ids=["the-folder", "its-parent"])
def test_a_backup_to_a_file_is_one_line_and_status_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    inside: bool,
) -> None:
    """`backup --to` makes its folder: a file there was a NotADirectoryError traceback."""
    afile = tmp_path / "not-a-dir"
    afile.write_text("kept")
    to = afile / "copy" if inside else afile
    data_dir = tmp_path / "steno"
    code, out, err = _cli(monkeypatch, capsys, "backup", "--to", str(to), data_dir=str(data_dir))
    assert (code, out) == (2, ""), err
    where = f"{to}: {afile}" if inside else f"{afile}"
    assert _one_line(err) == f"steno-collab backup: --to {where} is not a directory"
    assert afile.read_text() == "kept"
