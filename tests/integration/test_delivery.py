"""Outbound delivery end to end on loopback: a sending Tern (users at
a.test) submits to remote domains served by a second, receiving Tern
(b.test), through the queue, with configured routes (queue.routes) to
high loopback ports:

- a route to the receiver: delivered, queue empty;
- an unreachable route: deferred with the reason, shown by `tern queue
  list --json`, then flushed, held, released, and bounced by hand;
- the MX port never relays: an unauthenticated remote recipient is 554.
Delivery through MX records on the real port 25 (MX fallback, 4xx then
retry, 5xx and DSN, null MX, DANE, MTA-STS, smarthost, SRS, kill -9) is
in test_delivery_netns.py, inside a network namespace of its own."""
import smtplib

import pytest

import tern as tern_harness
from conftest import finish
from outbound import PASSWORD, find, queue_json, submit, wait_for


@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="recv")
    s.add_domain("b.test")
    s.add_user("bob@b.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def sender(receiver):
    s = tern_harness.TernServer(name="send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        # b.test through a fixed next hop; dead.test to a port nobody serves
        f.write("\nqueue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  routes = ( { domain = \"b.test\"; host = \"127.0.0.1\"; port = %d; },\n"
                "             { domain = \"dead.test\"; host = \"127.0.0.1\"; port = 9; } );\n"
                "};\n" % receiver.port("smtp"))
    s.start()
    yield s
    finish(s)


def test_route_delivers(sender, receiver):
    submit(sender, ["bob@b.test"], "routed one")
    assert wait_for(lambda: find(receiver, "bob@b.test", b"body of routed one"))
    assert wait_for(lambda: queue_json(sender) == [])
    assert "event=delivered" in sender.log()


def test_deferred_then_admin_actions(sender):
    submit(sender, ["late@dead.test"], "stuck")
    q = wait_for(lambda: [m for m in queue_json(sender)
                          if m["recipients"][0]["state"] == "deferred"])
    assert q, queue_json(sender)
    m = q[0]
    assert m["sender"] == "alice@a.test"
    assert m["recipients"][0]["last_error"], m
    assert m["recipients"][0]["attempts"] >= 1
    qid = m["id"]
    # show: envelope and headers
    p = sender.tern("queue", "show", qid)
    assert p.returncode == 0 and "Subject: stuck" in p.stdout and "late@dead.test" in p.stdout
    assert queue_json(sender, "--domain", "dead.test")[0]["id"] == qid
    assert queue_json(sender, "--domain", "b.test") == []
    assert queue_json(sender, "--state", "deferred")[0]["id"] == qid
    # hold / release / flush
    assert sender.tern("queue", "hold", qid).returncode == 0
    assert queue_json(sender, "--state", "held")[0]["id"] == qid
    assert sender.tern("queue", "release", qid).returncode == 0
    assert sender.tern("queue", "flush", "--domain", "dead.test").returncode == 0
    # bounce by hand: a DSN and an empty queue
    assert sender.tern("queue", "bounce", qid).returncode == 0
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"late@dead.test"))
    assert dsn and b"returned by the administrator" in dsn
    assert wait_for(lambda: queue_json(sender) == [])
    p = sender.tern("queue", "delete", qid)
    assert p.returncode != 0 and "no queued message" in p.stderr


def test_mx_port_is_no_relay(sender):
    with smtplib.SMTP("127.0.0.1", sender.port("smtp"), timeout=30) as c:
        c.ehlo("client.test")
        c.mail("someone@elsewhere.test")
        code, text = c.rcpt("victim@b.test")
    assert code == 554, (code, text)
