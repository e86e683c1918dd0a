"""`dev` writes files in its data dir (its lock, the embedded servers' logs): a folder where one
goes is one line and status 2 before anything starts, as a file where a folder goes is
(tests/test_operator_errors.py); it was an IsADirectoryError traceback, status 1."""

from pathlib import Path

import pytest

from tests.cli_env import Call, call, one_line  # noqa: F401 (the fixture)


@pytest.mark.parametrize("name", ["services.lock", "postgres.log", "redis/redis.log"])
def test_a_folder_where_dev_writes_a_file_is_one_line_and_status_2(
    call: Call,  # noqa: F811
    tmp_path: Path,
    name: str,
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / name).mkdir(parents=True)
    code, out, err = call("dev", "--port", "0", "--data-dir", str(data_dir))
    assert (code, out) == (2, ""), err
    assert one_line(err) == (
        f"steno-collab dev: --data-dir {data_dir}: {data_dir / name} is a directory,"
        " where a file goes"
    )
    assert sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*")) == sorted(
        {name, *([name.split("/")[0]] if "/" in name else [])}
    )  # nothing made


def test_servers_of_its_own_only(call: Call, tmp_path: Path) -> None:  # noqa: F811
    """With Redis and PostgreSQL elsewhere, their log files are none of dev's business."""
    data_dir = tmp_path / "data"
    (data_dir / "postgres.log").mkdir(parents=True)
    (data_dir / "redis" / "redis.log").mkdir(parents=True)
    stores = {"redis_url": "redis://127.0.0.1:1/0", "database_url": "postgresql://127.0.0.1:1/x"}
    code, _, err = call("dev", "--port", "0", "--data-dir", str(data_dir), process=False, **stores)
    assert "is a directory" not in err and "Traceback" not in err, err
    assert code == 1, err  # the configured servers do not answer
