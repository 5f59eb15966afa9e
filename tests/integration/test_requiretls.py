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
  header deferred), and the sender logs that the sender asked for it;
- nortls.test is routed (queue.routes) to mail.example.test, a small SMTP
  peer written here that offers STARTTLS with a certificate the sender
  trusts but not REQUIRETLS: the message is never offered to it (no MAIL
  command) and bounces with 5.7.30.
The submission port refuses the REQUIRETLS parameter without TLS (530
5.7.10) and does not advertise it there."""
import json
import os
import smtplib
import socket
import ssl
import threading

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from imapc import tls_ctx
from test_delivery import PASSWORD, find, queue_json, wait_for
import mtasts



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


class PlainPeer:
    """An SMTP server that offers STARTTLS (the receiver's certificate) but
    never REQUIRETLS; it records every command line it gets."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.commands = []
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.session(c)
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def session(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        c.sendall(b"220 peer ESMTP\r\n")
        tls = False
        for _ in range(50):
            line = f.readline(1000)
            if not line:
                return
            cmd = line.strip().decode("ascii", "replace")
            self.commands.append(cmd)
            verb = cmd.split(" ")[0].upper()
            if verb == "EHLO":
                c.sendall(b"250-peer\r\n250-8BITMIME\r\n" +
                          (b"250 PIPELINING\r\n" if tls else b"250 STARTTLS\r\n"))
            elif verb == "STARTTLS" and not tls:
                c.sendall(b"220 go ahead\r\n")
                c = self.ctx.wrap_socket(c, server_side=True)
                f = c.makefile("rb")
                tls = True
            elif verb == "QUIT":
                c.sendall(b"221 bye\r\n")
                return
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                c.sendall(b"250 ok\r\n")
            else:
                c.sendall(b"502 not here\r\n")


@pytest.fixture(scope="module")
def peer(receiver):
    tls = os.path.join(receiver.dir, "tls")
    p = PlainPeer(os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem"))
    yield p
    p.stop = True
    p.sock.close()
    p.thread.join(5)


# an MTA-STS enforce policy whose MX certificate (the receiver's
# self-signed one) the sender cannot verify
POLICIES = {
    "sts-enf.test": "version: STSv1\nmode: enforce\nmx: mx.sts-enf.test\nmax_age: 86400\n",
}


@pytest.fixture(scope="module")
def pki():
    d = mtasts.make_pki(POLICIES)
    yield d
    mtasts.remove_pki(d)


@pytest.fixture(scope="module")
def https(pki):
    srv = mtasts.PolicyServer(pki, POLICIES)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def dns(receiver):
    key = spki_sha256(os.path.join(receiver.dir, "tls", "cert.pem"))
    port = receiver.port("smtp")
    d = testdns.TestDNS()
    d.zone("dane.test", ["@ MX 10 mx", "mx A 127.0.0.1",
                         "_%d._tcp.mx TLSA 3 1 1 %s" % (port, key)], dnssec=True)
    d.zone("plain.test", ["@ MX 10 mx", "mx A 127.0.0.1"])
    d.zone("example.test", ["mail A 127.0.0.1"])
    d.zone("sts-enf.test", ["@ MX 10 mx", "mx A 127.0.0.1", "mta-sts A 127.0.0.1",
                            "_mta-sts TXT \"v=STSv1; id=20261129T1;\""])
    with d:
        d.start()
        yield d


def closed_port():
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sender(receiver, dns, https, pki, peer):
    s = tern_harness.TernServer(name="rtls-send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=True))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  remote_port = %d;\n  ca_file = \"%s\";\n"
                "  mta_sts = { enabled = true; ca_file = \"%s\"; port = %d; timeout = 5; };\n"
                "  routes = ( { domain = \"nortls.test\"; host = \"%s\"; port = %d; },\n"
                "             { domain = \"stuck.test\"; host = \"%s\"; port = %d; } );\n"
                "};\n" % (receiver.port("smtp"), os.path.join(receiver.dir, "tls", "cert.pem"),
                          os.path.join(pki, "ca.pem"), https.port,
                          tern_harness.HOSTNAME, peer.port,
                          tern_harness.HOSTNAME, closed_port()))
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


def test_requiretls_peer_without_it_bounces(sender, peer):
    submit(sender, "nemo@nortls.test", "rtls no peer support", requiretls=True)
    dsn = wait_for(lambda: find(sender, "alice@a.test",
                                b"Final-Recipient: rfc822; nemo@nortls.test"))
    assert dsn, sender.log_tail()
    assert b"Status: 5.7.30" in dsn, dsn
    # TLS was verified and the peer asked what it offers, but got no message
    assert any(c.upper().startswith("EHLO") for c in peer.commands), peer.commands
    assert "STARTTLS" in [c.upper() for c in peer.commands], peer.commands
    assert not [c for c in peer.commands if c.upper().startswith("MAIL")], peer.commands
    assert "tls=verify" in sender.log(), sender.log_tail()
    assert wait_for(lambda: queue_json(sender) == [])


def test_queue_show_requiretls(sender):
    # stuck.test is routed to a closed port: both messages stay queued
    submit(sender, "rt@stuck.test", "rtls stuck", requiretls=True)
    submit(sender, "pl@stuck.test", "plain stuck")
    q = queue_json(sender, "--domain", "stuck.test")
    got = {m["recipients"][0]["address"]: m["id"] for m in q}
    assert set(got) == {"rt@stuck.test", "pl@stuck.test"}, q
    try:
        for rcpt, want in (("rt@stuck.test", True), ("pl@stuck.test", False)):
            qid = got[rcpt]
            p = sender.tern("queue", "show", qid, "--json")
            assert p.returncode == 0, p.stderr
            shown = json.loads(p.stdout)
            assert len(shown) == 1 and shown[0]["id"] == qid, shown
            assert shown[0]["requiretls"] is want, shown
            p = sender.tern("queue", "show", qid)
            assert p.returncode == 0, p.stderr
            first = p.stdout.splitlines()[0]
            assert first.startswith(qid) and ("REQUIRETLS" in first) == want, p.stdout
            assert "Subject: %s" % ("rtls stuck" if want else "plain stuck") in p.stdout
    finally:
        for qid in got.values():
            sender.tern("queue", "delete", qid)
    assert wait_for(lambda: queue_json(sender, "--domain", "stuck.test") == [])
