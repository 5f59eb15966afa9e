"""pytest fixtures: real Tern servers on loopback.

shared      one server for the whole session (MX + submission tests that do
            not change config or kill anything); its users are below.
tern_factory  makes extra servers with their own config, stopped and
            removed when the test ends (for kill/restart/config tests).
"""
import os
import sys

import pytest

HARNESS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)

import tern as tern_harness  # noqa: E402

# Users of the shared server: address -> password
USERS = {
    "a@example.test": "alpha-Secret-1",
    "b@example.test": "bravo-Secret-2",
    "c@example.test": "charlie-Secret-3",
}
# alias -> targets
ALIASES = {
    "list@example.test": ["a@example.test", "b@example.test"],
    "sales@example.test": ["a@example.test"],
    "@catchall.test": ["c@example.test"],
}
DOMAINS = ["example.test", "catchall.test"]


def finish(srv):
    """Stop and remove srv; fail if a sanitizer reported in its log."""
    srv.stop()
    reports = srv.sanitizer_reports()
    srv.cleanup()
    if reports:
        pytest.fail("sanitizer report in server log:\n" + "\n".join(reports[:20]))


def populate(srv, users=USERS, aliases=ALIASES, domains=DOMAINS):
    for d in domains:
        srv.add_domain(d)
    for u, pw in users.items():
        srv.add_user(u, pw)
    for a, targets in aliases.items():
        srv.add_alias(a, *targets)


@pytest.fixture(scope="session")
def shared():
    try:
        srv = tern_harness.TernServer(name="shared")
    except tern_harness.TernError as e:
        pytest.fail(str(e))
    try:
        populate(srv)
        srv.start()
    except Exception:
        srv.cleanup()
        raise
    yield srv
    finish(srv)


@pytest.fixture
def tern_factory():
    made = []

    def make(config=None, populate_users=True, start=True, name="fn"):
        srv = tern_harness.TernServer(config=config, name=name)
        made.append(srv)
        if populate_users:
            populate(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in made:
        finish(srv)
