"""docker-compose.yml, checked without Docker: services, commands, settings, topics, health."""

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventlog.kafka import RECORD_HEADROOM
from eventlog.kafka_io import topic_configs
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab import cli

ROOT = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = {name: svc for name, svc in SERVICES.items() if svc.get("build") == "."}
SUBCOMMANDS = {"gateway", "projector", "snapshotter", "migrate"}


def env_names(service: dict[str, Any]) -> set[str]:
    env = service.get("environment", {})
    return set(env) if isinstance(env, dict) else {item.split("=", 1)[0] for item in env}


def test_the_stack_has_every_part() -> None:
    assert {
        "kafka",
        "kafka-init",
        "redis",
        "postgres",
        "migrate",
        "projector",
        "snapshotter",
    } <= set(SERVICES)
    gateways = [svc for svc in OURS.values() if svc["command"][1] == "gateway"]
    assert len(gateways) == 2
    assert {svc["command"][1] for svc in OURS.values()} == SUBCOMMANDS


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("zookeeper" in name for name in SERVICES)


@pytest.mark.parametrize("name", sorted(OURS))
def test_each_command_is_a_real_subcommand(name: str) -> None:
    command = OURS[name]["command"]
    assert command[0] == "steno-collab"
    assert command[1] in cli.COMMANDS, f"{name}: `steno-collab {command[1]}` is not registered"
    args = cli.build_parser().parse_args(command[1:])
    assert callable(args.func)


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_steno_variable_is_a_setting(name: str) -> None:
    fields = {f"STENO_{field.upper()}" for field in Settings.model_fields}
    names = {n for n in env_names(OURS[name]) if n.startswith("STENO_")}
    assert names, f"{name} gets no settings"
    assert names <= fields, f"{name}: unknown settings {sorted(names - fields)}"


def test_services_use_kafka_redis_and_postgres_of_the_stack() -> None:
    for name, svc in OURS.items():
        env = svc["environment"]
        assert env["STENO_LOG_URL"] == "kafka://kafka:9092", name
        assert env["STENO_REDIS_URL"].startswith("redis://redis:"), name
        assert "@postgres:5432/" in env["STENO_DATABASE_URL"], name
        assert env["STENO_DEV"] == "false", f"{name}: dev login must be off in production"
        assert env["STENO_KAFKA_IDEMPOTENCE"] == "true", name


def test_gateways_are_distinct_and_health_checked() -> None:
    gateways = {n: s for n, s in OURS.items() if s["command"][1] == "gateway"}
    ids = {svc["environment"]["STENO_GATEWAY_ID"] for svc in gateways.values()}
    assert len(ids) == len(gateways)
    for svc in gateways.values():
        assert svc["command"][2:] == ["--host", "0.0.0.0", "--port", "8000"]
        assert "/healthz" in " ".join(svc["healthcheck"]["test"])


def service_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a service of the stack starts with: its STENO_ variables, compose's
    `${VAR:-default}` taken as the default and `${VAR:?message}` as some value."""
    for variable in [v for v in os.environ if v.startswith("STENO_")]:
        monkeypatch.delenv(variable)
    for variable, value in OURS[name]["environment"].items():
        value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        monkeypatch.setenv(variable, re.sub(r"\$\{\w+:\?[^}]*\}", "x" * 32, value))
    return Settings()


def test_topics_are_created_as_the_services_would_create_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Retention as designed, and the record size and timestamps the services check at start:
    Apache Kafka's default (1 MiB) would stop them, refusing topics made without it."""
    init = SERVICES["kafka-init"]
    script = " ".join(init["command"])
    for variable, value in init["environment"].items():  # compose's $$ is the shell's $
        script = script.replace(f"$${variable}", str(value))
    creates = re.findall(r"--create .*?--topic (\S+)(.*?)(?=--create|--describe|$)", script, re.S)
    configs = {topic: set(re.findall(r"--config (\S+)", rest)) for topic, rest in creates}
    for name in OURS:  # every service of the stack needs the same
        settings = service_settings(name, monkeypatch)
        largest = max(settings.max_message_bytes, settings.max_document_bytes)
        letters, presence = settings.topic(Topic.LETTERS), settings.topic(Topic.PRESENCE)
        wanted = {letters: None, presence: settings.presence_retention_ms}
        assert set(configs) == set(wanted), name
        for topic, retention in wanted.items():
            made = topic_configs(retention, largest + RECORD_HEADROOM)
            assert configs[topic] == {f"{key}={value}" for key, value in made.items()}, name
    assert "${STENO_PARTITIONS:-8}" == init["environment"]["PARTITIONS"]


def test_dependencies_name_services_that_exist() -> None:
    for name, svc in SERVICES.items():
        for dependency in svc.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
    for name in ("projector", "snapshotter", "gateway-1", "gateway-2"):
        waits = SERVICES[name]["depends_on"]
        assert waits["migrate"]["condition"] == "service_completed_successfully"
        assert waits["kafka-init"]["condition"] == "service_completed_successfully"


def test_one_dockerfile_serves_every_service() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install ." in dockerfile
    cmd = re.search(r"^CMD (.+)$", dockerfile, re.M)
    assert cmd is not None and json.loads(cmd.group(1))[0] == "steno-collab"
    # The gateway serves the committed bundle from ./web/dist: the build context must keep it.
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not any(
        pattern.startswith("web") and "node_modules" not in pattern for pattern in ignored
    )


def test_the_projectors_metrics_are_reachable_from_other_containers() -> None:
    """Its /metrics binds STENO_HOST, 127.0.0.1 by default: inside a container, no scraper
    could reach it."""
    projector = SERVICES["projector"]
    assert projector["environment"]["STENO_HOST"] == "0.0.0.0"
    assert env_names(projector) >= env_names(SERVICES["snapshotter"])  # the rest kept
