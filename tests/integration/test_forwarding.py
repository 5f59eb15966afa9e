"""Forwarding with SRS and over-quota DSNs, end to end with two Tern
instances on loopback (as in test_delivery.py, routes instead of MX).

- the forwarder serves a.test; list@a.test is an alias for bob@b.test
  (remote, on the receiver) and carol@a.test (local);
- mail from a foreign sender (orig@origin.test) to the alias on port 25
  reaches bob with the envelope sender rewritten to SRS0=...@a.test (the
  forwarder's SRS domain), and carol with the original one;
- a bounce (null sender) to that SRS address reaches orig@origin.test (a
  user of the receiver, through the forwarder's queue); a tampered SRS
  address is refused 550, and a non-null sender may not use one;
- port 25 mail for two users, one of them over quota: the other gets it,
  the sender gets a DSN with Status 5.2.2; alone, the full user is 452."""
import re
import smtplib

import pytest

import tern as tern_harness
from conftest import finish

PASSWORD = "fw-Secret-1"


wait_for = tern_harness.wait_for


def find(srv, address, marker):
    found = tern_harness.find_stored(srv, address, marker)
    return found[0] if found else None


@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="fwrecv")
    for d in ("b.test", "origin.test"):
        s.add_domain(d)
    s.add_user("bob@b.test", PASSWORD)
    s.add_user("orig@origin.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def forwarder(receiver):
    s = tern_harness.TernServer(name="fwd")
    s.add_domain("a.test")
    s.add_user("carol@a.test", PASSWORD)
    s.add_user("full@a.test", PASSWORD, quota=2048)
    s.add_alias("list@a.test", "bob@b.test", "carol@a.test")
    port = receiver.port("smtp")
    with open(s.conf, "a") as f:
        f.write("\nqueue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  routes = ( { domain = \"b.test\"; host = \"127.0.0.1\"; port = %d; },\n"
                "             { domain = \"origin.test\"; host = \"127.0.0.1\"; port = %d; } );\n"
                "};\n" % (port, port))
    # `tern init` wrote srs.secret and srs.secrets_file; the SRS domain is ours
    s.set("srs.domain", "a.test")
    s.start()
    yield s
    finish(s)


def smtp_send(srv, sender, rcpts, body):
    """Port 25 without SIZE, so quota is checked at end of data.  Returns
    the RCPT replies and the DATA reply."""
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as c:
        c.ehlo("client.test")
        code, text = c.mail(sender)
        assert code == 250, (code, text)
        rcpt = [c.rcpt(r) for r in rcpts]
        if not any(code == 250 for code, _ in rcpt):
            return rcpt, None
        return rcpt, c.data(body.encode())


def message(subject, frm="orig@origin.test", to="list@a.test", pad=0):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@origin.test>\r\n\r\n"
            "body of %s\r\n%s" % (frm, to, subject, subject.replace(" ", "-"), subject,
                                  ("x" * 70 + "\r\n") * pad))


def srs_address(stored):
    m = re.match(rb"Return-Path: <([^>]*)>", stored)
    assert m, stored[:200]
    return m.group(1).decode()


def test_srs_forward_and_bounce_back(forwarder, receiver):
    rcpt, data = smtp_send(forwarder, "orig@origin.test", ["list@a.test"],
                           message("forward one"))
    assert rcpt[0][0] == 250 and data[0] == 250, (rcpt, data)
    got = wait_for(lambda: find(receiver, "bob@b.test", b"body of forward one"))
    assert got, forwarder.log_tail()
    srs = srs_address(got)
    assert re.match(r"(?i)SRS0=[^=]{4}=[A-Z2-7]{2}=origin\.test=orig@a\.test$", srs), srs
    local = find(forwarder, "carol@a.test", b"body of forward one")
    assert local and srs_address(local) == "orig@origin.test"

    # a bounce for it comes back to the SRS address: to the original sender
    dsn = ("From: MAILER-DAEMON@b.test\r\nTo: %s\r\nSubject: Undelivered Mail\r\n\r\n"
           "bounce for forward one\r\n" % srs)
    rcpt, data = smtp_send(forwarder, "", [srs], dsn)
    assert rcpt[0][0] == 250 and data[0] == 250, (rcpt, data)
    back = wait_for(lambda: find(receiver, "orig@origin.test", b"bounce for forward one"))
    assert back, forwarder.log_tail()
    assert back.startswith(b"Return-Path: <>")
    assert "event=srs_reversed" in forwarder.log()

    # tampered hash, wrong case is fine (hashes compare case-insensitively)
    local_part, domain = srs.split("@")
    parts = local_part.split("=")
    assert len(parts) >= 5, srs
    h = parts[1]
    parts[1] = ("B" if h[0] != "B" else "C") + h[1:]
    forged = "=".join(parts) + "@" + domain
    rcpt, _ = smtp_send(forwarder, "", [forged], dsn)
    assert rcpt[0][0] == 550, rcpt
    # another user's address in a valid-looking SRS form
    parts = local_part.split("=")
    parts[-1] = "victim"
    rcpt, _ = smtp_send(forwarder, "", ["=".join(parts) + "@" + domain], dsn)
    assert rcpt[0][0] == 550, rcpt
    # only bounces (the null sender) may use an SRS address
    rcpt, _ = smtp_send(forwarder, "spammer@elsewhere.test", [srs], dsn)
    assert rcpt[0][0] == 550, rcpt


def test_over_quota_gets_dsn(forwarder, receiver):
    body = message("quota split", to="carol@a.test, full@a.test", pad=60)
    assert len(body) > 2048
    rcpt, data = smtp_send(forwarder, "orig@origin.test", ["carol@a.test", "full@a.test"], body)
    assert [code for code, _ in rcpt] == [250, 250] and data[0] == 250, (rcpt, data)
    assert find(forwarder, "carol@a.test", b"body of quota split")
    assert not find(forwarder, "full@a.test", b"body of quota split")
    dsn = wait_for(lambda: find(receiver, "orig@origin.test", b"full@a.test"))
    assert dsn, forwarder.log_tail()
    assert b"multipart/report" in dsn and b"Action: failed" in dsn
    assert b"Status: 5.2.2" in dsn
    assert b"Subject: quota split" in dsn
    # the full user alone: 452, the client keeps the message
    rcpt, data = smtp_send(forwarder, "orig@origin.test", ["full@a.test"],
                           message("quota alone", to="full@a.test", pad=60))
    assert rcpt[0][0] == 250 and data[0] == 452, (rcpt, data)
