"""What an operator following the README meets when a setting or an argument is wrong: lists
written either way, and every refusal one stderr line with the documented status (2: fix the
configuration; 1: a store that may answer later), never a traceback or a password."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from schemas.settings import Settings, data_dir_refusal
from steno_collab.commands.gateway import unverifiable
from tests.cli_env import Call, call, one_line, run_steno
from tests.support import ROOT, free_port

__all__ = ["call"]  # the fixture
PASSWORD = "s3cret-pw"


# -- list settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("http://localhost", ["http://localhost"]),
        ("http://a.example, https://b.example", ["http://a.example", "https://b.example"]),
        ('["http://a.example", "https://b.example"]', ["http://a.example", "https://b.example"]),
        ("", []),
    ],
    ids=["one", "commas", "json", "empty"],
)
def test_list_settings_take_json_or_commas(
    monkeypatch: pytest.MonkeyPatch, text: str, items: list[str]
) -> None:
    monkeypatch.setenv("STENO_ALLOWED_ORIGINS", text)
    monkeypatch.setenv("STENO_JWT_ALGORITHMS", text or "HS256")
    settings = Settings()
    assert settings.allowed_origins == items
    assert settings.jwt_algorithms == (items or ["HS256"])


def test_a_plain_algorithm_list_works_on_the_command_line(tmp_path: Path) -> None:
    code, out, err = run_steno(
        tmp_path, "token", "--user", "u", "--firm", "f", jwt_algorithms="HS256,RS256"
    )
    assert code == 0 and out.count(".") == 2, err  # a JWT: header.claims.signature


def test_token_with_an_empty_secret_is_one_line_and_status_2(call: Call) -> None:
    code, out, err = call("token", "--user", "u", "--firm", "f", jwt_secret="")
    assert (code, out) == (2, ""), err
    assert one_line(err) == "steno-collab token: STENO_JWT_SECRET is empty: nothing to sign with"


@pytest.mark.parametrize(
    "args",
    [
        ["gateway"],
        ["dev", "--port", "0"],
        ["projector"],
        ["snapshotter"],
        ["migrate"],
        ["token", "--user", "u", "--firm", "f"],
        ["history", "some-letter"],
        ["backfill", "projector"],
    ],
    ids=lambda args: args[0],
)
def test_a_list_setting_that_is_neither_form_is_one_line_and_status_2(
    call: Call, args: list[str]
) -> None:
    process = args[0] == "gateway"
    code, _, err = call(*args, process=process, allowed_origins='["http://a.example"')
    assert code == 2, err
    line = one_line(err)
    assert line.startswith(f"steno-collab {args[0]}: invalid setting STENO_ALLOWED_ORIGINS: "), line
    assert "comma-separated" in line


# -- store URLs ---------------------------------------------------------------------------------


WRONG_KIND = {
    "log-http": ("log_url", "http://127.0.0.1:9092", "unsupported log URL 'http://127.0.0.1:9092'"),
    "log-empty": ("log_url", "kafka://", "unsupported log URL 'kafka://'"),
    "redis-no-scheme": ("redis_url", "127.0.0.1:6379", "not a Redis URL: '127.0.0.1:6379'"),
    "pg-scheme": (
        "database_url",
        f"mysql://u:{PASSWORD}@db/x",
        "not a PostgreSQL URL: 'mysql://***@db/x'",
    ),
}


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        *(("gateway", kind) for kind in WRONG_KIND),
        ("snapshotter", "log-http"),
        ("projector", "redis-no-scheme"),
        ("replay", "pg-scheme"),
    ],
)
def test_a_store_url_of_the_wrong_kind_is_a_configuration_error(
    call: Call, command: str, kind: str
) -> None:
    setting, url, says = WRONG_KIND[kind]
    args = [command, "some-letter"] if command == "replay" else [command]
    code, _, err = call(*args, process=command == "replay", **{setting: url})
    assert code == 2, err
    line = one_line(err)
    assert line.startswith(f"steno-collab {command}: invalid setting STENO_{setting.upper()}: "), (
        line
    )
    assert says in line and PASSWORD not in line


def test_an_empty_store_url_means_unset() -> None:
    settings = Settings(log_url="", redis_url="", database_url="")
    assert (settings.log_url, settings.redis_url, settings.database_url) == (None, None, None)


def test_migrate_names_an_unreachable_postgresql_with_status_1(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: refused at once
    url = f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/x"
    code, _, err = run_steno(tmp_path, "migrate", "--database-url", url)
    assert code == 1, err
    line = one_line(err)
    assert line.startswith(f"steno-collab migrate: PostgreSQL at 127.0.0.1:{port}: "), line
    assert PASSWORD not in line


@pytest.mark.parametrize(
    "url",
    ["garbage", f"postgresql://u:{PASSWORD}@127.0.0.1:port/x", "postgresql://127.0.0.1:99999/x"],
    ids=["no-scheme", "port-not-a-number", "port-out-of-range"],
)
def test_migrate_refuses_a_malformed_url_with_status_2(call: Call, url: str) -> None:
    code, _, err = call("migrate", "--database-url", url, process=url == "garbage")
    assert code == 2, err
    line = one_line(err)
    assert line.startswith("steno-collab migrate: malformed PostgreSQL URL: "), line
    assert PASSWORD not in line


# -- token algorithms ---------------------------------------------------------------------------

PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"


@pytest.mark.parametrize(
    ("command", "algorithms", "says"),
    [
        ("gateway", '["RS256"]', "no key to verify RS256 tokens with"),
        ("gateway", "HS256,none", '"none"'),
        ("dev", "ES256", "no key to verify ES256 tokens with"),
    ],
)
def test_token_settings_that_verify_no_token_refuse_to_start(
    tmp_path: Path, command: str, algorithms: str, says: str
) -> None:
    args = [command, "--port", str(free_port())]
    code, out, err = run_steno(tmp_path, *args, jwt_algorithms=algorithms)
    assert code == 2, err
    line = one_line(err)
    assert line.startswith(f"steno-collab {command}: STENO_JWT_ALGORITHMS "), line
    assert says in line and out == ""


@pytest.mark.parametrize(
    ("algorithms", "says"),
    [
        (["ES256", "RS256"], "no key to verify ES256, RS256 tokens with"),
        (["none"], '"none"'),
        (["NONE", "RS256"], '"none"'),
        ([], "names no supported algorithm"),
        (["HS265"], "names no supported algorithm"),
        (["hs256"], "names no supported algorithm"),  # tokens name it HS256: never equal
    ],
)
def test_algorithms_no_token_could_pass(algorithms: list[str], says: str) -> None:
    refused = unverifiable(Settings(jwt_algorithms=algorithms))
    assert refused is not None and says in refused


def test_an_asymmetric_algorithm_needs_a_key_or_a_key_set() -> None:
    def refused(key: str | None = None, jwks: str | None = None) -> bool:
        settings = Settings(jwt_algorithms=["RS256"], jwt_public_key=key, jwt_jwks_url=jwks)
        return unverifiable(settings) is not None

    assert refused() and refused(key="not a PEM")
    assert not refused(key=PUBLIC_KEY)
    assert not refused(jwks="https://id.example/jwks")
    assert unverifiable(Settings(jwt_algorithms=["RS256", "HS256"])) is None  # the secret


# -- help ---------------------------------------------------------------------------------------


def test_token_help_shows_its_defaults(call: Call) -> None:
    code, out, _ = call("token", "--help")  # as a process: test_python_m_runs_the_cli
    assert code == 0
    assert "(default: editor)" in out and "(default: 3600)" in out


@pytest.mark.parametrize("module", ["steno_collab", "steno_collab.cli"])
def test_python_m_runs_the_cli(module: str) -> None:
    """Either module (re-read RM: `python -m steno_collab.cli dev` exited 0 having run nothing)."""
    done = subprocess.run(
        [sys.executable, "-m", module, "token", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(default: editor)" in done.stdout


# -- numbers out of range ---------------------------------------------------------------------
# Each was taken: a negative append timeout answered every create 504, a leeway of -100 refused
# fresh tokens, no connection allowed per user refused every handshake 429, port 70000 was a
# traceback (OverflowError from bind).
OUT_OF_RANGE = {
    "port": "70000",
    "append_timeout_s": "-1",
    "max_document_bytes": "-1",
    "jwt_leeway_s": "-100",
    "max_connections_per_user": "0",
    "max_connections_per_letter": "-5",
    "rate_messages_per_s": "0",
    "idle_unload_s": "-1",
}


@pytest.mark.parametrize("setting", sorted(OUT_OF_RANGE))
def test_a_number_out_of_range_is_one_line_and_status_2(call: Call, setting: str) -> None:
    code, _, err = call("gateway", process=False, **{setting: OUT_OF_RANGE[setting]})
    assert code == 2, err
    line = one_line(err)
    assert line.startswith(f"steno-collab gateway: invalid setting STENO_{setting.upper()}: "), line


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_flag_out_of_range_is_refused_by_the_parser(call: Call, port: str) -> None:
    code, _, err = call("gateway", "--port", port)
    assert code == 2, err
    assert "Traceback" not in err and f"argument --port: '{port}' is not a port (0-65535)" in err


# -- settings named as the operator sets them ------------------------------------------------


@pytest.mark.parametrize("command", ["gateway", "projector"])
def test_contradictory_limits_name_both_variables(call: Call, command: str) -> None:
    """It named the fields (`update_bytes_burst`), which no operator sets."""
    limits = {"update_bytes_burst": "1048576", "max_message_bytes": "2097152"}
    code, _, err = call(command, process=command == "projector", **limits)
    assert code == 2, err
    assert one_line(err) == (
        f"steno-collab {command}: invalid settings: STENO_UPDATE_BYTES_BURST (1048576) must be"
        " at least STENO_MAX_MESSAGE_BYTES (2097152): a larger update could never be admitted"
    )


# The commands that open the embedded log (or, `dev`, the embedded servers) in STENO_DATA_DIR:
# a file there was a traceback (NotADirectoryError, FileExistsError), status 1, restarted for
# ever. Each refuses it before it sets up logging (or binds a port).
DATA_DIR_USERS = {
    "gateway": ["gateway", "--port", "0"],
    "projector": ["projector", "--metrics-port", "0"],
    "snapshotter": ["snapshotter", "--metrics-port", "0"],
    "dev": ["dev", "--port", "0"],
}


@pytest.mark.parametrize("inside", [False, True], ids=["the-dir", "its-parent"])
@pytest.mark.parametrize("command", sorted(DATA_DIR_USERS))
def test_a_data_dir_that_is_a_file_is_one_line_and_status_2(
    call: Call, tmp_path: Path, command: str, inside: bool
) -> None:
    afile = tmp_path / "not-a-dir"
    afile.write_text("kept")
    data_dir = afile / "steno" if inside else afile
    stores = {"redis_url": "redis://127.0.0.1:1/0", "database_url": "postgresql://127.0.0.1:1/x"}
    args = DATA_DIR_USERS[command]
    process = command == "projector" and not inside
    code, out, err = call(*args, process=process, data_dir=str(data_dir), **stores)
    assert (code, out) == (2, ""), err
    where = f"{data_dir}: {afile}" if inside else f"{afile}"
    assert one_line(err) == f"steno-collab {command}: STENO_DATA_DIR {where} is not a directory"
    assert afile.read_text() == "kept"


@pytest.mark.parametrize("command", sorted(DATA_DIR_USERS))
def test_a_data_dir_that_cannot_be_made_is_one_line_and_status_2(call: Call, command: str) -> None:
    """Under /proc nothing can be made, root or not (re-read RJ: a PermissionError traceback
    from the log's or dev's first mkdir, status 1)."""
    stores = {"redis_url": "redis://127.0.0.1:1/0", "database_url": "postgresql://127.0.0.1:1/x"}
    code, out, err = call(
        *DATA_DIR_USERS[command], process=False, data_dir="/proc/steno-x", **stores
    )
    assert (code, out) == (2, ""), err
    assert one_line(err).startswith(
        f"steno-collab {command}: STENO_DATA_DIR /proc/steno-x cannot be made: "
    )


def test_dev_names_its_data_dir_flag(call: Call, tmp_path: Path) -> None:
    afile = tmp_path / "not-a-dir"
    afile.touch()
    code, _, err = call("dev", "--port", "0", "--data-dir", str(afile))
    assert code == 2, err
    assert one_line(err) == f"steno-collab dev: --data-dir {afile} is not a directory"


def test_a_data_dir_that_is_a_file_does_not_matter_to_a_kafka_log(tmp_path: Path) -> None:
    """Only the embedded log lives there: with Kafka the projector goes on (to the broker)."""
    afile = tmp_path / "not-a-dir"
    afile.touch()
    settings = {"log_url": "kafka://127.0.0.1:1", "redis_url": "redis://127.0.0.1:1/0"}
    code, _, err = run_steno(tmp_path, "projector", data_dir=str(afile), **settings)
    assert "is not a directory" not in err and "Traceback" not in err, err
    assert code == 1, err  # the broker does not answer: status 1, as README says


def test_the_projector_without_redis_says_which_command_needs_it(tmp_path: Path) -> None:
    code, out, err = run_steno(tmp_path, "projector")
    assert (code, out) == (1, ""), err  # status 1: README, STENO_REDIS_URL
    assert one_line(err) == "steno-collab projector: set STENO_REDIS_URL (redis://host:port/db)"


def test_the_data_dir_check_makes_nothing_and_races_with_no_one(tmp_path: Path) -> None:
    """Services starting together on a fresh host each check the same data dir (re-read RR1:
    the check made the missing folders and removed them again, refusing a good dir with "File
    exists" and removing one another process had just made)."""
    target = tmp_path / "a" / "b" / "data"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: data_dir_refusal(target), range(200)))
    assert set(answers) == {None}
    assert list(tmp_path.iterdir()) == []  # nothing made, nothing left
    made = tmp_path / "a"
    made.mkdir()  # made by another process meanwhile: left alone
    assert data_dir_refusal(target) is None and list(made.iterdir()) == []
