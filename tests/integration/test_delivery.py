"""Outbound delivery end to end on loopback: a sending Tern (users at
a.test) submits to remote domains served by a second, receiving Tern
(b.test, mx.test), through the queue.

- a configured route (queue.routes) to the receiver: delivered, queue empty;
- MX resolution through the test DNS (nsd): the lowest MX host refuses
  connections, the next one takes the mail; a null MX domain and an
  NXDOMAIN domain bounce at once;
- a 550 at RCPT: the recipient bounces and a DSN (multipart/report) lands
  in the sender's INBOX; another recipient of the same message is
  delivered;
- an unreachable route: deferred with the reason, shown by `tern queue
  list --json`, then flushed, held, released, and bounced by hand;
- the MX port never relays: an unauthenticated remote recipient is 554.
Remote SMTP servers listen on high loopback ports (queue.remote_port and
routes say where); the receiving Tern refuses unknown users like any MX."""
import json
import smtplib

import pytest

import tern as tern_harness
from imapc import tls_ctx
import testdns
from conftest import finish

PASSWORD = "dl-Secret-1"



@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="recv")
    for d in ("b.test", "mx.test"):
        s.add_domain(d)
    s.add_user("bob@b.test", PASSWORD)
    s.add_user("max@mx.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def dns(receiver):
    d = testdns.TestDNS()
    # the lowest MX has an address where nothing listens (127.0.0.2)
    d.zone("mx.test", ["@ MX 10 dead", "@ MX 20 live", "dead A 127.0.0.2",
                       "live A 127.0.0.1"])
    d.zone("nullmx.test", ["@ MX 0 ."])
    d.zone("nothere.test", ["@ TXT \"no mail\""])
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def sender(receiver, dns):
    s = tern_harness.TernServer(name="send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=False))
        # MX hosts on the receiver's port; b.test through a fixed next hop;
        # dead.test to a port nobody serves
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  remote_port = %d;\n"
                "  routes = ( { domain = \"b.test\"; host = \"127.0.0.1\"; port = %d; },\n"
                "             { domain = \"dead.test\"; host = \"127.0.0.1\"; port = 9; } );\n"
                "};\n" % (receiver.port("smtp"), receiver.port("smtp")))
    s.start()
    yield s
    finish(s)


def submit(srv, rcpts, subject, sender="alice@a.test"):
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\n\r\nbody of %s\r\n"
           % (sender, ", ".join(rcpts), subject, subject.replace(" ", "-"), subject))
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), context=tls_ctx(),
                          timeout=30) as c:
        c.login(sender, PASSWORD)
        refused = c.sendmail(sender, rcpts, msg.encode())
    assert refused == {}


wait_for = tern_harness.wait_for


def find(srv, address, marker, mailbox="INBOX"):
    """The first stored message in address's mailbox holding marker, or None."""
    found = tern_harness.find_stored(srv, address, marker, mailbox)
    return found[0] if found else None


def queue_json(srv, *args):
    p = srv.tern("queue", "list", "--json", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_route_delivers(sender, receiver):
    submit(sender, ["bob@b.test"], "routed one")
    assert wait_for(lambda: find(receiver, "bob@b.test", b"body of routed one"))
    assert wait_for(lambda: queue_json(sender) == [])
    assert "event=delivered" in sender.log()


def test_mx_fallback(sender, receiver):
    submit(sender, ["max@mx.test"], "via mx")
    assert wait_for(lambda: find(receiver, "max@mx.test", b"body of via mx"))
    log = sender.log()
    assert "host=\"dead.mx.test\"" in log or "host=dead.mx.test" in log
    assert wait_for(lambda: queue_json(sender) == [])


def test_rcpt_refused_bounces_with_dsn(sender, receiver):
    submit(sender, ["bob@b.test", "nobody@b.test"], "half bounce")
    assert wait_for(lambda: find(receiver, "bob@b.test", b"body of half bounce"))
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"nobody@b.test"))
    assert dsn, sender.log_tail()
    assert b"multipart/report" in dsn and b"report-type=delivery-status" in dsn
    assert b"Action: failed" in dsn and b"Status: 5.1.1" in dsn
    assert b"Final-Recipient: rfc822; nobody@b.test" in dsn or \
        b"Final-Recipient: rfc822;nobody@b.test" in dsn
    assert b"Subject: half bounce" in dsn          # the original's headers come back
    assert wait_for(lambda: queue_json(sender) == [])


def test_null_mx_and_nxdomain_bounce_at_once(sender):
    # gone.mx.test: a name inside a served zone that does not exist (NXDOMAIN)
    submit(sender, ["x@nullmx.test", "y@nothere.test", "z@gone.mx.test"], "no way")
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"Final-Recipient: rfc822; x@nullmx.test"))
    assert dsn and b"null MX" in dsn, sender.log_tail()
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"Final-Recipient: rfc822; z@gone.mx.test"))
    assert dsn and b"does not exist" in dsn, sender.log_tail()
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"Final-Recipient: rfc822; y@nothere.test"))
    assert dsn and b"no mail server" in dsn, sender.log_tail()
    assert wait_for(lambda: queue_json(sender) == [])


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
