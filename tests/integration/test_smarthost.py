"""Outbound mail through a smarthost (queue.smarthost) that must not be
used: a sending Tern (users at a.test) hands every remote recipient to a
second Tern's submission port (a high loopback port), which requires
STARTTLS with a verified certificate, then AUTH.

- a sender without the smarthost's certificate as its CA file cannot
  verify it: the message is deferred with the verification error and
  never sent in clear (nothing reaches the smarthost);
- a wrong smarthost password: deferred, never delivered;
- implicit TLS (RFC 8314): the smarthost's submissions port (465 + offset)
  with tls = "implicit": the message arrives "with ESMTPSA", and the
  sender logged an implicit-TLS connection, verified.
The smarthost's user is alice@a.test, since submission checks that the
authenticated user owns the envelope sender.  Delivery through a
smarthost on port 587 with STARTTLS and AUTH is in
test_delivery_netns.py."""
import os

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from outbound import PASSWORD, deferred, find, queue_json, submit, wait_for

RELAY_PASSWORD = "relay-Secret-7"


@pytest.fixture(scope="module")
def smarthost():
    s = tern_harness.TernServer(name="smarthost")
    for d in ("a.test", "b.test"):
        s.add_domain(d)
    s.add_user("alice@a.test", RELAY_PASSWORD)
    s.add_user("bob@b.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def dns():
    d = testdns.TestDNS()
    d.zone("example.test", ["mail A 127.0.0.1"])
    with d:
        d.start()
        yield d


def make_sender(name, smarthost, dns, ca_file, password, kind="submission", tls=None):
    s = tern_harness.TernServer(name=name)
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    pw = os.path.join(s.dir, "smarthost.pw")
    with open(pw, "w") as f:
        f.write(password + "\n")
    os.chmod(pw, 0o644)   # the worker reads it after dropping privileges
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=False))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "%s"
                "  smarthost = { host = \"%s\"; port = %d; user = \"alice@a.test\";\n"
                "                password_file = \"%s\";%s };\n"
                "};\n" % ("  ca_file = \"%s\";\n" % ca_file if ca_file else "",
                          tern_harness.HOSTNAME, smarthost.port(kind), pw,
                          " tls = \"%s\";" % tls if tls else ""))
    s.start()
    return s


def smarthost_cert(smarthost):
    return os.path.join(smarthost.dir, "tls", "cert.pem")


def test_unverified_certificate_defers(smarthost, dns):
    s = make_sender("sh-noca", smarthost, dns, None, RELAY_PASSWORD)
    try:
        submit(s, ["bob@b.test"], "no ca file")
        q = deferred(s, "bob@b.test")
        assert q, s.log_tail()
        assert "certificate" in q[0]["last_error"], q
        assert find(smarthost, "bob@b.test", b"body of no ca file") is None
    finally:
        finish(s)


def test_wrong_password_defers(smarthost, dns):
    s = make_sender("sh-badpw", smarthost, dns, smarthost_cert(smarthost), "not-the-password")
    try:
        submit(s, ["bob@b.test"], "bad password")
        q = deferred(s, "bob@b.test")
        assert q, s.log_tail()
        assert "535" in q[0]["last_error"], q
        assert find(smarthost, "bob@b.test", b"body of bad password") is None
    finally:
        finish(s)


def test_implicit_tls_smarthost(smarthost, dns):
    s = make_sender("sh-465", smarthost, dns, smarthost_cert(smarthost), RELAY_PASSWORD,
                    kind="submissions", tls="implicit")
    try:
        submit(s, ["bob@b.test"], "via implicit tls")
        msg = wait_for(lambda: find(smarthost, "bob@b.test", b"body of via implicit tls"))
        assert msg, s.log_tail()
        assert b"with ESMTPSA" in msg
        assert wait_for(lambda: queue_json(s) == [])
        log = s.log()
        assert "implicit_tls=yes" in log and "smarthost=yes" in log
        assert "verified=yes" in log
    finally:
        finish(s)
