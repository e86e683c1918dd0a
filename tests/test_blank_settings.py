"""A blank optional setting (`STENO_X=`, as compose files write "unset") counts as unset."""

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway.auth import mint_token, verify_token
from projector.settings import ProjectorSettings
from schemas.settings import BlankIsUnset, Settings, optional_fields
from tests.gateway.harness import running_gateway

# Every settings model built from the environment: their optional fields must take a blank as
# unset.
MODELS = (Settings, ProjectorSettings)
OPTIONAL = [(model, name) for model in MODELS for name in sorted(optional_fields(model))]


def test_the_optional_fields_are_found() -> None:
    # The iteration below must see the ones this was written for, and future ones with them.
    assert {"jwt_audience", "jwt_issuer", "jwt_jwks_url", "metrics_token", "redis_url"} <= {
        name for _, name in OPTIONAL
    }


@pytest.mark.parametrize(("model", "name"), OPTIONAL, ids=lambda v: getattr(v, "__name__", v))
def test_a_blank_optional_setting_is_none(
    model: type[BlankIsUnset], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None, not the default: a blank metrics port is off (re-read RR: it opened the default
    # port, unauthenticated, where a blank had been refused).
    prefix = model.model_config.get("env_prefix", "")
    monkeypatch.setenv(f"{prefix}{name.upper()}", "")
    assert getattr(model(), name) is None
    monkeypatch.delenv(f"{prefix}{name.upper()}")
    blank: dict[str, Any] = {name: ""}
    assert getattr(model(**blank), name) is None  # as tests and wiring build them


def test_blank_audience_and_issuer_accept_the_dev_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STENO_JWT_AUDIENCE", "")
    monkeypatch.setenv("STENO_JWT_ISSUER", "")
    settings = Settings()
    assert verify_token(mint_token(settings, "u1", "firm-a"), settings).sub == "u1"


def test_blank_audience_and_issuer_are_none_to_the_verifier_too() -> None:
    # Built without validation (as model_copy does): the check must read them as mint_token does.
    settings = Settings().model_copy(update={"jwt_audience": "", "jwt_issuer": ""})
    assert verify_token(mint_token(settings, "u1", "firm-a"), settings).sub == "u1"


async def test_a_blank_metrics_token_leaves_metrics_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STENO_METRICS_TOKEN", "")
    settings = Settings(data_dir=tmp_path / "steno", partitions=1)
    async with running_gateway(settings) as gw, httpx.AsyncClient(base_url=gw.http) as http:
        assert (await http.get("/metrics")).status_code == 200
        blank = await http.get("/metrics", headers={"Authorization": "Bearer"})
        assert blank.status_code == 200


async def test_an_unvalidated_blank_metrics_token_is_none(tmp_path: Path) -> None:
    # Not a token an empty `Bearer ` matches while every other scraper gets 401.
    settings = Settings(data_dir=tmp_path / "steno", partitions=1).model_copy(
        update={"metrics_token": SecretStr("")}
    )
    async with running_gateway(settings) as gw, httpx.AsyncClient(base_url=gw.http) as http:
        assert (await http.get("/metrics")).status_code == 200
