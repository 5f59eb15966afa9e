"""REQUIRETLS and TLS-Required (RFC 8689) end to end: a sending Tern
delivers through MX records in the test DNS to a receiving Tern on
loopback (queue.remote_port), the way test_mta_sts.py does.

- dane.test is DNSSEC-signed with a TLSA record for the receiver's key at
  _PORT._tcp.mx: a REQUIRETLS message goes over DANE, REQUIRETLS is passed
  on, and the receiver logs it (requiretls=yes);
- plain.test has neither DNSSEC, TLSA nor MTA-STS: a REQUIRETLS message is
  never sent; it bounces with 5.7.10 and the DSN (headers only) lands in
  the sender's INBOX;
- sts-enf.test publishes an MTA-STS enforce policy whose MX certificate
  does not match: with "TLS-Required: No" the message is delivered over
  opportunistic TLS (test_mta_sts.py shows the same message without the
  header deferred), and the sender logs that the sender asked for it."""
import os
import smtplib

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from imapc import tls_ctx
from test_delivery import PASSWORD, find, queue_json, wait_for
from test_mta_sts import https, pki  # noqa: F401 (fixtures)



def spki_sha256(cert_path):
    import hashlib
    import subprocess
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="rtls-recv")
    for d, u in (("dane.test", "dan"), ("plain.test", "pat"), ("sts-enf.test", "user")):
        s.add_domain(d)
        s.add_user("%s@%s" % (u, d), PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def dns(receiver):
    key = spki_sha256(os.path.join(receiver.dir, "tls", "cert.pem"))
    port = receiver.port("smtp")
    d = testdns.TestDNS()
    d.zone("dane.test", ["@ MX 10 mx", "mx A 127.0.0.1",
                         "_%d._tcp.mx TLSA 3 1 1 %s" % (port, key)], dnssec=True)
    d.zone("plain.test", ["@ MX 10 mx", "mx A 127.0.0.1"])
    d.zone("sts-enf.test", ["@ MX 10 mx", "mx A 127.0.0.1", "mta-sts A 127.0.0.1",
                            "_mta-sts TXT \"v=STSv1; id=20261129T1;\""])
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def sender(receiver, dns, https, pki):  # noqa: F811
    s = tern_harness.TernServer(name="rtls-send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=True))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  remote_port = %d;\n  ca_file = \"%s\";\n"
                "  mta_sts = { enabled = true; ca_file = \"%s\"; port = %d; timeout = 5; };\n"
                "};\n" % (receiver.port("smtp"), os.path.join(receiver.dir, "tls", "cert.pem"),
                          os.path.join(pki, "ca.pem"), https.server_address[1]))
    s.start()
    yield s
    finish(s)


def submit(srv, rcpt, subject, headers="", requiretls=False):
    msg = ("From: alice@a.test\r\nTo: %s\r\nSubject: %s\r\n%sMessage-ID: <%s@a.test>\r\n\r\n"
           "body of %s\r\n" % (rcpt, subject, headers, subject.replace(" ", "-"), subject))
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), context=tls_ctx(),
                          timeout=30) as c:
        c.login("alice@a.test", PASSWORD)
        c.ehlo()
        assert c.has_extn("requiretls")
        refused = c.sendmail("alice@a.test", [rcpt], msg.encode(),
                             mail_options=["REQUIRETLS"] if requiretls else [])
    assert refused == {}


def test_requiretls_over_dane_delivered(sender, receiver):
    submit(sender, "dan@dane.test", "rtls dane", requiretls=True)
    assert wait_for(lambda: find(receiver, "dan@dane.test", b"body of rtls dane")), \
        sender.log_tail()
    log = sender.log()
    assert "event=requiretls" in log and "tls=dane" in log, sender.log_tail()
    # the receiver was asked for REQUIRETLS (it logs it with the delivery)
    got = [ln for ln in receiver.log().splitlines()
           if "event=delivered" in ln and "requiretls=yes" in ln]
    assert got, receiver.log_tail()
    assert wait_for(lambda: queue_json(sender) == [])


def test_requiretls_without_dane_bounces(sender, receiver):
    before = receiver.log().count("requiretls=yes")
    submit(sender, "pat@plain.test", "rtls plain", requiretls=True)
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"Final-Recipient: rfc822; pat@plain.test"))
    assert dsn, sender.log_tail()
    assert b"Status: 5.7.10" in dsn and b"REQUIRETLS" in dsn, dsn
    assert b"Subject: rtls plain" in dsn            # the headers come back ...
    assert b"body of rtls plain" not in dsn         # ... but never the content
    assert find(receiver, "pat@plain.test", b"body of rtls plain") is None
    assert "event=requiretls_skip" in sender.log()
    # nothing of it reached the receiver, not even a connection for it
    assert receiver.log().count("requiretls=yes") == before
    assert wait_for(lambda: queue_json(sender) == [])


def test_requiretls_refused_without_tls(sender):
    with smtplib.SMTP("127.0.0.1", sender.port("smtp"), timeout=30) as c:
        c.ehlo()
        assert not c.has_extn("requiretls")
        code, text = c.mail("x@remote.test", ["REQUIRETLS"])
        assert code == 530 and text.startswith(b"5.7.10"), (code, text)


def test_tls_required_no_ignores_mta_sts(sender, receiver):
    submit(sender, "user@sts-enf.test", "tls optional", headers="TLS-Required: No\r\n")
    assert wait_for(lambda: find(receiver, "user@sts-enf.test", b"body of tls optional")), \
        sender.log_tail()
    log = sender.log()
    assert "event=tls_required_no" in log, sender.log_tail()
    assert "event=tls_policy_ignored" in log, sender.log_tail()
    assert "event=mta_sts_policy domain=sts-enf.test" in log or \
        "event=mta_sts_policy domain=\"sts-enf.test\"" in log, sender.log_tail()
    assert wait_for(lambda: queue_json(sender) == [])
