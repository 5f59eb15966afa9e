"""Over-quota DSNs, end to end with two Tern instances on loopback (routes
instead of MX): port 25 mail for two users of the forwarder (a.test), one
of them over quota: the other gets it, the sender (orig@origin.test, a
user of the receiver, reached through the forwarder's queue) gets a DSN
with Status 5.2.2; alone, the full user is 452.  Forwarding through an
alias with SRS and a bounce coming back to the original sender are in
test_delivery_netns.py, over MX records and the real port 25."""
import pytest

import tern as tern_harness
from conftest import finish
from outbound import find, message, smtp_send, wait_for

PASSWORD = "fw-Secret-1"


@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="fwrecv")
    s.add_domain("origin.test")
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
    with open(s.conf, "a") as f:
        f.write("\nqueue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  routes = ( { domain = \"origin.test\"; host = \"127.0.0.1\"; port = %d; } );\n"
                "};\n" % receiver.port("smtp"))
    s.start()
    yield s
    finish(s)


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
