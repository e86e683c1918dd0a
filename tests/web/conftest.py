"""One `steno-collab dev` stack per pytest process (each xdist worker) for the browser tests
that take test_browser.py's `base_url`: a stack per module was ~35 starts of its PostgreSQL,
Redis and services (4-6 s each under the suite's load). The tests on it make letters of their
own; a module that asserts firm- or user-wide state takes `own_base_url` (stacks.py). And one
Chromium per process for test_browser.py's `browser`."""

from tests.web.browser import chromium
from tests.web.stacks import opened_fixture, stack_url

shared_stack_url = opened_fixture(stack_url, "session")
shared_browser = opened_fixture(chromium, "session")
