"""Fixtures of the browser tests. One `steno-collab dev` stack per pytest process (each xdist
worker) behind `base_url`: a stack per module was ~35 starts of its PostgreSQL, Redis and
services (4-6 s each under the suite's load). The tests on it make letters of their own; a
module that asserts firm- or user-wide state takes `own_base_url` (stacks.py), which overrides
this `base_url` there. And one Chromium per process behind `browser`."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.web.browser import chromium
from tests.web.stacks import opened_fixture, stack_url

shared_stack_url = opened_fixture(stack_url, "session")
shared_browser = opened_fixture(chromium, "session")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's basetemp: a concurrent pytest run chmods that to 0700, and the
    embedded PostgreSQL (an unprivileged user when we are root) must traverse the parents."""
    with tempfile.TemporaryDirectory(prefix="steno-web-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def base_url(shared_stack_url: str) -> str:
    """The stack every module shares: a test makes letters of its own there and asserts nothing
    of the firm's or a user's other letters (else: stacks.py's `own_base_url`)."""
    return shared_stack_url


@pytest.fixture(scope="module")
def browser(shared_browser: Browser) -> Browser:
    """The Chromium every module shares; each test opens contexts of its own and closes them."""
    return shared_browser
