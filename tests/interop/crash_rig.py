"""Real processes for gateway crash tests: a Tansu broker reached through a proxy that can swallow
requests (appends that hang), `steno-collab gateway` processes that can be killed with -9, and a
load balancer in front of them that stock clients reconnect through; and the Node clients' view
of a crash (editors, their closes, what the log holds)."""

import asyncio
import os
import secrets
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Doc, Text, merge_updates

from eventlog.factory import open_log
from eventlog.records import Record
from gateway.auth import mint_token
from gateway.preparse import STATE_LIMITS, check_update
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.embedded import on_a_free_port
from steno_collab.processes import Supervised
from tests.conftest import start_tansu
from tests.interop.driver import NodeClient
from tests.interop.tcp_proxy import Proxy
from tests.support import eventually, free_port, gateway_ready, spawn_listening

CLI = [sys.executable, "-c", "from steno_collab.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[2]
FIRM = "firm-a"
ABNORMAL = 1006  # a socket that ended without a close frame
WAIT_S = 30.0  # y-websocket retries at most every 2.5 s; a gateway starts in a few seconds


class Rig:
    def __init__(self, settings: Settings, kafka: Proxy, balancer: Proxy, workdir: Path) -> None:
        self.settings, self.kafka, self.balancer, self.workdir = settings, kafka, balancer, workdir
        self.gateway: asyncio.subprocess.Process | None = None  # the one the balancer serves
        self._started: list[asyncio.subprocess.Process] = []

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.balancer.port}"

    async def start_gateway(self) -> None:
        """A new gateway process; the balancer sends new connections to it once it is ready."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
        env |= {
            "STENO_LOG_URL": str(self.settings.log_url),
            "STENO_KAFKA_IDEMPOTENCE": "false",
            "STENO_TOPIC_PREFIX": self.settings.topic_prefix,
            "STENO_PARTITIONS": str(self.settings.partitions),
            "STENO_REDIS_URL": str(self.settings.redis_url),  # client id owners outlive it
            "STENO_JWT_SECRET": self.settings.jwt_secret.get_secret_value(),
            # Its appends hang while the broker's requests are swallowed: the test kills it
            # before it would give up on them (4503 and the rescue, which no kill -9 allows).
            "STENO_APPEND_TIMEOUT_S": str(self.settings.append_timeout_s),
        }

        async def start(port: int) -> asyncio.subprocess.Process:
            n = len(self._started)
            env["STENO_DATA_DIR"] = str(self.workdir / f"gateway-{n}")
            err = await asyncio.to_thread(open, self.workdir / f"gateway-{n}.log", "ab")
            with err:  # the child keeps its own descriptor
                proc = await asyncio.create_subprocess_exec(
                    *CLI, "gateway", "--host", "127.0.0.1", "--port", str(port), env=env,
                    cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=err,
                )  # fmt: skip
            self._started.append(proc)
            return proc

        self.gateway, self.balancer.target = await spawn_listening(start, gateway_ready)

    async def kill_gateway(self) -> None:
        """kill -9 the gateway being served: no rescue, no flush, its sockets just end."""
        assert self.gateway is not None
        self.balancer.target = None  # connections are refused until another one is started
        self.gateway.send_signal(signal.SIGKILL)
        await self.gateway.wait()
        self.gateway = None

    async def stop(self) -> None:
        for proc in self._started:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    def token(self, user: str) -> str:
        return mint_token(self.settings, user, FIRM, name=user.title())

    async def create_letter(self) -> str:
        headers = {"Authorization": f"Bearer {self.token('creator')}"}
        async with httpx.AsyncClient(base_url=self.http, timeout=30) as http:
            body = {"firm_id": FIRM, "title": "T", "content": ""}
            r = await http.post("/v1/letters", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return str(r.json()["letter_id"])

    async def client(self, letter: str, user: str) -> NodeClient:
        """A stock y-websocket provider connected through the balancer."""
        client = await NodeClient.spawn()
        params = {"token": self.token(user), "letterId": letter}
        url = f"ws://127.0.0.1:{self.balancer.port}/v1"
        reply = await client.call("connect", url=url, room=f"letter-{letter}", params=params)
        client.client_id = reply["clientID"]
        return client

    async def metrics(self) -> str:
        async with httpx.AsyncClient(base_url=self.http) as http:
            return (await http.get("/metrics")).text

    async def records(self, letter: str) -> list[Record]:
        """The letter's records on the log (read with a log client of its own, opened only
        while the broker answers: it would lose its requests too)."""
        log = open_log(self.settings, readonly=True)
        await log.start()
        try:
            topic = self.settings.topic(Topic.LETTERS)
            partition = log.partition_for(topic, letter.encode())
            found: list[Record] = []
            offset = 0
            while batch := await log.read(topic, partition, offset):
                found += [r for r in batch if r.key == letter.encode()]
                offset = batch[-1].offset + 1
            return found
        finally:
            await log.close()

    async def logged_text(self, letter: str) -> str:
        updates = [r.value for r in doc_updates(await self.records(letter))]
        doc: Doc[Any] = Doc()
        if updates:
            doc.apply_update(merge_updates(*updates))
        return str(doc.get("text", type=Text))


def doc_updates(records: list[Record]) -> list[Record]:
    return [r for r in records if dict(r.headers)["type"] == b"doc.update"]


async def start_broker(kafka: Proxy, log: Path) -> Supervised:
    """Tansu behind `kafka`: it advertises the proxy, so every client's request goes through it."""

    async def start(port: int) -> Supervised:
        kafka.target = port
        proc, _ = await start_tansu(log, port=port, advertised=kafka.port)
        return proc

    return await on_a_free_port(lambda: start(free_port()))


@asynccontextmanager
async def crash_rig(workdir: Path, redis_url: str) -> AsyncIterator[Rig]:
    """A broker behind a proxy, a balancer and one gateway started; everything stopped after."""
    kafka, balancer = await Proxy().start(), await Proxy().start()
    settings = Settings(
        data_dir=workdir / "reader", log_url=f"kafka://127.0.0.1:{kafka.port}",
        kafka_idempotence=False, topic_prefix=f"t{uuid.uuid4().hex[:8]}.", partitions=2,
        redis_url=redis_url, jwt_secret=secrets.token_hex(32), append_timeout_s=60,
    )  # fmt: skip
    rig = Rig(settings, kafka, balancer, workdir)
    broker: Supervised | None = None
    try:
        broker = await start_broker(kafka, workdir / "tansu.log")
        await rig.start_gateway()
        yield rig
    finally:
        await rig.stop()
        await balancer.stop()
        if broker is not None:
            await broker.stop(timeout=5)
        await kafka.stop()


async def two_editors(rig: Rig, letter: str) -> tuple[NodeClient, NodeClient]:
    """Alice and Bob synced, each having typed (and logged) once: their client ids are theirs."""
    alice = await rig.client(letter, "alice")
    bob = await rig.client(letter, "bob")
    await alice.event("sync", synced=True)
    await bob.event("sync", synced=True)
    await alice.call("insert", index=0, value="alice ")
    await bob.call("waitText", equals="alice ")
    await bob.call("insert", index=6, value="bob ")
    await alice.call("waitText", equals="alice bob ")
    await until_logged(rig, letter, "alice bob ")
    return alice, bob


async def until_logged(rig: Rig, letter: str, text: str) -> None:
    async def done() -> bool:
        return await rig.logged_text(letter) == text

    await eventually(done, timeout=WAIT_S, interval=0.2)


async def until_synced(client: NodeClient) -> None:
    async def synced() -> bool:
        return bool((await client.call("unsynced")).get("synced"))

    await eventually(synced, timeout=WAIT_S, interval=0.1)


def closes(client: NodeClient) -> list[int | None]:
    return [e.get("code") for e in client.events if e.get("event") == "close"]


async def first_refusal(client: NodeClient) -> int | None:
    """The first close code the server chose (not a local close, None; the dead gateway's
    sockets just end: 1006)."""
    chosen = await eventually(
        lambda: [c for c in closes(client) if c not in (None, ABNORMAL)], WAIT_S
    )
    return chosen[0]


def never_locked_out(client: NodeClient) -> None:
    final = [code for code in closes(client) if code is not None and 4400 <= code < 4500]
    assert not final, f"closed with {final}: y-websocket does not reconnect after it"


async def check_log(rig: Rig, letter: str, authors: dict[int, str]) -> None:
    """Every struct of the letter is logged exactly once, under the user who owns its client id."""
    seen: dict[int, list[tuple[int, int]]] = {}
    for record in doc_updates(await rig.records(letter)):
        user = dict(record.headers)["user"].decode()
        for client, start, end in check_update(record.value, STATE_LIMITS).blocks:
            assert authors.get(client) == user, f"{client}'s structs logged under {user}"
            seen.setdefault(client, []).append((start, end))
    for client, ranges in seen.items():
        ranges.sort()
        ends = [0] + [end for _, end in ranges[:-1]]
        assert [start for start, _ in ranges] == ends, f"{client}: {ranges} (gap or twice)"
