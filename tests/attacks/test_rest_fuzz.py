"""The REST API under generated input (schemathesis, from the app's own OpenAPI document).

Everything runs as `steno-collab dev` does: gateway, projector and snapshotter over the embedded
log, Redis and PostgreSQL, auditor routes included, so an input that breaks a consumer shows up
too. That is how the first run found its worst fault: a comment with U+0000 in it, accepted by
the gateway, stopped the snapshotter (and with it the dev service) for good.

Each role's run is bounded (`--max-examples` per operation, deterministic: the same cases every
time; the random phase as the editor and the auditor only, see ROLES). A case fails if the API
answers 5xx, or otherwise than its OpenAPI document says (CHECKS). Afterwards the service must
still be running, and the snapshotter must have stored everything the run appended (one
partition, so a letter created last is listed only once every record before it is committed).
"""

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from pathlib import Path

import asyncpg
import httpx

from tests.support import eventually, free_port

DEV = [sys.executable, "-c", "from steno_collab.cli import main; main()", "dev"]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# The dev users (editor, commenter, viewer, auditor) and the phases each runs. Every role runs
# the coverage phase (the boundary and invalid values of every parameter, ~430 cases a role):
# each operation's answer to each role, refusals included, is checked against the document.
# The fuzzing phase (EXAMPLES random cases an operation, ~270, two thirds of a role's time) runs
# as the editor and the auditor only: in deterministic mode it draws the very same requests for
# every role, and the commenter and the viewer may do a subset of what the editor may (their
# other requests stop at the role check, as in the coverage phase), so theirs would send the
# editor's requests again to the same handlers; the auditor alone reaches the auditor routes.
FUZZED = "examples,coverage,fuzzing"
COVERED = "examples,coverage"
ROLES = {"avery": FUZZED, "casey": COVERED, "vera": COVERED, "audrey": FUZZED}
# The fuzzing phase's cases per operation: ~700 cases a fuzzed role over the 27 operations. 25
# made ~970 a role: a third more time for more of the same random draws.
EXAMPLES = 10
# No 5xx, and every answer as the OpenAPI document says: its status codes, media types,
# headers and bodies, and a token required where one is declared. Not the checks that guess
# which requests should pass from the schema alone: it cannot say what a valid instant or anchor
# is, nor that a comment body over 10,000 characters answers 413.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
)
# Not `allow_header_conformance`: `Allow` names what the router accepts (responses.py), and
# `.../comments/{thread_id}/resolve` (POST) is also `.../comments/{thread_id}/{comment_id}`
# (PATCH, DELETE) with the comment id "resolve", so the schema's path lists fewer methods.


async def _database_url(proc: asyncio.subprocess.Process) -> str:
    """Read the banner up to its last line; the PostgreSQL URL it names."""
    assert proc.stdout is not None
    seen: list[str] = []
    while not seen or "Press Ctrl-C" not in seen[-1]:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, f"dev exited early: {seen}"
        seen.append(line.decode())
    found = re.search(r"postgresql +(\S+)", "".join(seen))
    assert found, seen
    return found.group(1)


async def _fuzz(base: str, token: str, phases: str, workdir: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "run", f"{base}/openapi.json",
        "-H", f"Authorization: Bearer {token}",
        "--checks", ",".join(CHECKS),
        "--phases", phases,
        "--max-examples", str(EXAMPLES),
        "--generation-deterministic",
        "--request-timeout", "20",
        "--no-color",
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_generated_requests_get_no_server_error_and_break_no_consumer(
    service_tmp: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
    env |= {
        "STENO_PARTITIONS": "1",
        # The fuzzer's request rate is not what is under test here (test_limits is).
        "STENO_REST_REQUESTS_BURST": "1000000",
        "STENO_REST_REQUESTS_PER_S": "1000000",
        # Its stderr is read at the end only: an access record per request (INFO) would fill
        # the pipe, and dev would block writing to it.
        "STENO_LOG_LEVEL": "WARNING",
    }
    data = service_tmp / "data"
    dev = await asyncio.create_subprocess_exec(
        *DEV, "--data-dir", str(data), "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        database_url = await _database_url(dev)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            tokens = {}
            for user in ROLES:
                r = await http.post("/dev/token", json={"user_id": user})
                tokens[user] = r.json()["token"]
            editor = {"Authorization": f"Bearer {tokens['avery']}"}
            body = {"firm_id": "demo-firm", "title": "Fuzzed", "content": "Dear Sir,\nRe: claim"}
            letter = (await http.post("/v1/letters", json=body, headers=editor)).json()
            # Path parameters named letter_id are this letter (else nearly every case is 403).
            config = f'[parameters]\n"path.letter_id" = {json.dumps(letter["letter_id"])}\n'
            (service_tmp / "schemathesis.toml").write_text(config)

            for user, phases in ROLES.items():
                code, out = await _fuzz(base, tokens[user], phases, service_tmp)
                assert code == 0, f"as {user}:\n{out[-6000:]}"
                assert "passed" in out and dev.returncode is None, out[-2000:]

            last = await http.post("/v1/letters", json={**body, "title": "last"}, headers=editor)
            marker = last.json()["letter_id"]

        # Asked of PostgreSQL itself (GET /v1/letters also lists the letters this instance
        # created, stored or not): the snapshotter has committed everything before the marker.
        pg = await asyncpg.connect(database_url)
        try:

            async def stored() -> bool:
                assert dev.returncode is None, "the service stopped"
                sql = "SELECT 1 FROM letters WHERE letter_id = $1"
                return await pg.fetchval(sql, marker) is not None

            await eventually(stored, timeout=60, interval=0.2)
        finally:
            await pg.close()
    finally:
        if dev.returncode is None:
            dev.terminate()
        try:
            _, err = await asyncio.wait_for(dev.communicate(), 60)
        except TimeoutError:
            # Nothing left running (a hung dev kept its Redis and PostgreSQL going in CI, each in
            # a session of its own): killed with them, then the test fails.
            for pid in [*_descendants(dev.pid), dev.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await dev.wait()
            raise AssertionError("steno-collab dev did not stop within 60 s of SIGTERM") from None
    assert b"stopped unexpectedly" not in err, err.decode(errors="replace")[-3000:]


def _descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs (from /proc: each one's parent)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, level = [], [pid]
    while level:
        level = [child for parent in level for child in parents.get(parent, [])]
        found += level
    return found
