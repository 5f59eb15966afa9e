"""MTA-STS (RFC 8461) end to end: a sending Tern delivers to a receiving
Tern (mail.example.test) through MX records in the test DNS; each
recipient domain publishes _mta-sts TXT and mta-sts.DOMAIN A records, and
its policy is served over HTTPS by a small Python server whose certificate
comes from a test CA made here with openssl (the sender's
queue.mta_sts.ca_file).  The sender verifies SMTP certificates against the
receiver's self-signed certificate (queue.ca_file), which names only
mail.example.test.

- enforce, MX mail.example.test (verifies): delivered; the policy is
  fetched once and then served from the cache;
- testing, the same kind of MX: delivered, and the failure reported in the
  log (event=mta_sts_report);
- enforce, the MX not among the policy's mx patterns: deferred without a
  connection to it.
Enforce with an MX certificate that does not match the MX name (deferred,
nothing sent in clear) is in test_delivery_netns.py, with the policy on
the real port 443."""
import os

import pytest

import mtasts
import tern as tern_harness
import testdns
from conftest import finish
from outbound import PASSWORD, deferred, find, submit, wait_for

HOST = tern_harness.HOSTNAME   # mail.example.test, the receiver's certificate name

POLICIES = {
    "sts-ok.test": "version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmax_age: 86400\r\n" % HOST,
    "sts-tst.test": "version: STSv1\nmode: testing\nmx: *.sts-tst.test\nmax_age: 86400\n",
    "sts-mis.test": "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n",
}
MX = {
    "sts-ok.test": HOST + ".",
    "sts-tst.test": "mx",
    "sts-mis.test": HOST + ".",
}


@pytest.fixture(scope="module")
def pki():
    """A test CA and a certificate for every mta-sts.DOMAIN it signs."""
    d = mtasts.make_pki(POLICIES)
    yield d
    mtasts.remove_pki(d)


@pytest.fixture(scope="module")
def https(pki):
    srv = mtasts.PolicyServer(pki, POLICIES)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="sts-recv")
    for d in POLICIES:
        s.add_domain(d)
        s.add_user("user@" + d, PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def dns():
    d = testdns.TestDNS()
    d.zone("example.test", ["mail A 127.0.0.1"])
    for dom in POLICIES:
        d.zone(dom, ["@ MX 10 %s" % MX[dom], "mx A 127.0.0.1", "mta-sts A 127.0.0.1",
                     "_mta-sts TXT \"v=STSv1; id=20261128T1;\""])
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def sender(receiver, dns, https, pki):
    s = tern_harness.TernServer(name="sts-send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=False))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  remote_port = %d;\n  ca_file = \"%s\";\n"
                "  mta_sts = { enabled = true; ca_file = \"%s\"; port = %d; timeout = 5; };\n"
                "};\n" % (receiver.port("smtp"), os.path.join(receiver.dir, "tls", "cert.pem"),
                          os.path.join(pki, "ca.pem"), https.port))
    s.start()
    yield s
    finish(s)


def test_enforce_valid_delivers_and_caches(sender, receiver, https):
    submit(sender, ["user@sts-ok.test"], "sts ok one")
    assert wait_for(lambda: find(receiver, "user@sts-ok.test", b"body of sts ok one")), \
        sender.log_tail()
    log = sender.log()
    assert "event=mta_sts_policy domain=sts-ok.test" in log or \
        "event=mta_sts_policy domain=\"sts-ok.test\"" in log
    assert "tls=verify" in log
    submit(sender, ["user@sts-ok.test"], "sts ok two")
    assert wait_for(lambda: find(receiver, "user@sts-ok.test", b"body of sts ok two"))
    assert https.fetches.count("mta-sts.sts-ok.test") == 1
    assert "source=cache" in sender.log()


def test_testing_mode_delivers_and_reports(sender, receiver):
    submit(sender, ["user@sts-tst.test"], "sts testing")
    assert wait_for(lambda: find(receiver, "user@sts-tst.test", b"body of sts testing")), \
        sender.log_tail()
    log = [ln for ln in sender.log().splitlines() if "event=mta_sts_report" in ln]
    assert any("mode=testing" in ln and "certificate-not-valid" in ln for ln in log), log


def test_enforce_mx_mismatch_defers(sender, receiver):
    submit(sender, ["user@sts-mis.test"], "sts mismatch")
    q = deferred(sender, "user@sts-mis.test")
    assert q, sender.log_tail()
    err = q[0]["last_error"]
    assert "does not match the MTA-STS policy" in err, err
    assert "result=mx-mismatch" in sender.log()
    assert find(receiver, "user@sts-mis.test", b"body of sts mismatch") is None
