"""Outbound delivery to the world, end to end on the real ports, inside a
network namespace this module creates (tests/harness/netns.py: unshare(2)
as `unshare -n` does, then back out when the module ends).  Nothing here
touches the machine's network; there are no queue.remote_port or
queue.routes settings: every next hop comes from MX (or A) records in the
test DNS, and every receiving server listens on port 25 (587, 443) of an
address of its own.

In the namespace (loopback only):
  127.0.0.1   the test DNS (nsd, a high port) and the sending Terns
              (high ports: only their clients are the test)
  127.0.0.2   nothing: a dead MX
  127.0.0.10  "mx", the receiving Tern, on the standard ports
  127.0.0.11  "smarthost", another Tern (mail.example.test), standard ports
  127.0.0.12  the MTA-STS policy server, HTTPS on port 443
  127.0.0.13  a wire recorder on port 25 that relays to 127.0.0.10:25 and
              keeps what the client sent: the MX of the domains where
              nothing may be sent in clear

Cases (each asserts what arrived where, byte for byte where it matters,
and the sender's queue through `tern queue list --json`):
- the lowest MX refuses connections, the next MX takes the mail;
- 4xx then retry: a recipient over quota is 452 and deferred; once
  `tern user quota` raises it, the retry delivers;
- a 550 at RCPT: a DSN in the sender's INBOX, the other recipient of the
  same message delivered;
- null MX (RFC 7505), NXDOMAIN and no-mail-server domains bounce at once;
- DANE (RFC 7672): a matching TLSA delivers over TLS; a TLSA that matches
  nothing defers, and the wire shows only EHLO and STARTTLS in clear,
  then a TLS handshake, never MAIL, RCPT or the message;
- MTA-STS enforce (RFC 8461, the policy fetched from port 443) with an MX
  certificate that does not match the MX name: deferred, never delivered,
  the same on the wire;
- a smarthost on port 587 with STARTTLS and AUTH;
- forwarding through an alias with SRS, and a bounce to the SRS address
  that comes back to the original sender;
- kill -9 of a sender during 1000 deliveries: nothing lost, duplicates at
  the receiver (by Message-ID) at most the deliveries in flight (the full
  1000-message run; it was test_queue_crash.py on a loopback route).
The loopback tests in test_delivery.py, test_smarthost.py, test_mta_sts.py
and test_forwarding.py keep only what is not here."""
import base64
import collections
import os
import re
import socket
import threading
import time

import pytest

import mtasts
import tern as tern_harness
import testdns
from conftest import finish
from netns import NetNS
from outbound import (PASSWORD, compose, deferred, find, message, queue_json, smtp_send,
                      spki_sha256, submit, wait_for)
from smtpc import SmtpConn, dot_stuff

MX_ADDR = "127.0.0.10"
SMARTHOST_ADDR = "127.0.0.11"
STS_ADDR = "127.0.0.12"
WIRE_ADDR = "127.0.0.13"
DEAD_ADDR = "127.0.0.2"
RELAY_PASSWORD = "relay-Secret-7"
STS_ENFORCE = "version: STSv1\nmode: enforce\nmx: mx.sts-enf.test\nmax_age: 86400\n"

# domain -> user(s) at the receiving Tern
RECEIVER_USERS = ["max@mx.test", "bob@b.test", "orig@origin.test", "sink@crash.test",
                  "dan@dane.test", "bad@badtlsa.test", "user@sts-enf.test"]


@pytest.fixture(scope="module")
def ns():
    home = NetNS.inode()
    with NetNS():
        assert NetNS.inode() != home
        yield


def mx_zone(extra=()):
    return ["@ MX 10 mx", "mx A %s" % MX_ADDR] + list(extra)


@pytest.fixture(scope="module")
def receiver(ns):
    s = tern_harness.TernServer(name="mx25", offset=0, host=MX_ADDR)
    for d in sorted({u.split("@")[1] for u in RECEIVER_USERS}):
        s.add_domain(d)
    for u in RECEIVER_USERS:
        s.add_user(u, PASSWORD)
    s.add_user("full@b.test", PASSWORD, quota=64)
    s.start()
    assert s.port("smtp") == 25
    yield s
    finish(s)


@pytest.fixture(scope="module")
def smarthost(ns):
    s = tern_harness.TernServer(name="sh587", offset=0, host=SMARTHOST_ADDR)
    for d in ("a.test", "b.test"):
        s.add_domain(d)
    s.add_user("alice@a.test", RELAY_PASSWORD)
    s.add_user("bob@b.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def pki(ns):
    d = mtasts.make_pki(["sts-enf.test"])
    yield d
    mtasts.remove_pki(d)


@pytest.fixture(scope="module")
def policy(ns, pki):
    srv = mtasts.PolicyServer(pki, {"sts-enf.test": STS_ENFORCE}, host=STS_ADDR, port=443)
    yield srv
    srv.stop()


class WireRecorder:
    """A TCP relay on (WIRE_ADDR, 25) to the receiver's port 25 that keeps
    the bytes each client sent (one entry per connection, once it ended),
    so a test sees exactly what went over the wire in clear.  Bounded:
    30 s per read."""

    def __init__(self):
        self.sessions = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((WIRE_ADDR, 25))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    @staticmethod
    def _pump(src, dst, rec):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if rec is not None:
                    rec += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _relay(self, client):
        rec = bytearray()
        try:
            server = socket.create_connection((MX_ADDR, 25), timeout=30)
        except OSError:
            client.close()
            return
        client.settimeout(30)
        back = threading.Thread(target=self._pump, args=(server, client, None), daemon=True)
        back.start()
        self._pump(client, server, rec)
        back.join(30)
        client.close()
        server.close()
        with self.lock:
            self.sessions.append(bytes(rec))

    def sent(self):
        """What each client sent, one entry per finished connection."""
        with self.lock:
            return list(self.sessions)

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def wire(ns):
    w = WireRecorder()
    yield w
    w.stop()


def assert_nothing_in_clear(wire, before):
    """A connection through the recorder ended since it held before
    sessions, and in every one so far (all are for domains that must never
    get mail in clear): EHLO and STARTTLS in clear, then only TLS records
    (or nothing); never MAIL, RCPT or message data in clear."""
    assert wait_for(lambda: len(wire.sent()) > before, 10), "the sender never connected"
    for data in wire.sent():
        m = re.match(rb"EHLO [!-~]+\r\nSTARTTLS\r\n", data)
        assert m, data[:300]
        rest = data[m.end():]
        assert rest == b"" or rest.startswith(b"\x16\x03"), rest[:100]   # a TLS handshake
        assert b"MAIL FROM" not in data.upper() and b"RCPT TO" not in data.upper()


@pytest.fixture(scope="module")
def dns(receiver):
    key = spki_sha256(os.path.join(receiver.dir, "tls", "cert.pem"))
    d = testdns.TestDNS()
    d.zone("example.test", ["mail A %s" % SMARTHOST_ADDR])
    d.zone("mx.test", ["@ MX 10 dead", "@ MX 20 live", "dead A %s" % DEAD_ADDR,
                       "live A %s" % MX_ADDR])
    for dom in ("b.test", "origin.test", "crash.test"):
        d.zone(dom, mx_zone())
    d.zone("nullmx.test", ["@ MX 0 ."])
    d.zone("nothere.test", ["@ TXT \"no mail\""])
    d.zone("dane.test", mx_zone(["_25._tcp.mx TLSA 3 1 1 %s" % key]), dnssec=True)
    # the MX of these two is the wire recorder, in front of the receiver
    d.zone("badtlsa.test", ["@ MX 10 mx", "mx A %s" % WIRE_ADDR,
                            "_25._tcp.mx TLSA 3 1 1 %s" % ("00" * 32)], dnssec=True)
    d.zone("sts-enf.test", ["@ MX 10 mx", "mx A %s" % WIRE_ADDR, "mta-sts A %s" % STS_ADDR,
                            "_mta-sts TXT \"v=STSv1; id=20261129T1;\""])
    with d:
        d.start()
        yield d


def make_sender(name, dns, queue_conf, users=("alice@a.test",)):
    """A sending Tern on 127.0.0.1 (high ports) resolving through the test
    DNS with DNSSEC on; queue_conf: the settings inside `queue = { }`, or
    a function of the new server that returns them."""
    s = tern_harness.TernServer(name=name)
    s.add_domain("a.test")
    for u in users:
        s.add_user(u, PASSWORD)
    if callable(queue_conf):
        queue_conf = queue_conf(s)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=True))
        f.write("queue = {\n%s};\n" % queue_conf)
    return s


@pytest.fixture(scope="module")
def sender(receiver, dns, pki, policy):
    """alice@a.test sends; list@a.test forwards to bob@b.test (remote,
    with SRS) and carol@a.test; opportunistic TLS, DANE, MTA-STS."""
    s = make_sender("out", dns,
                    "  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                    "  ca_file = \"%s\";\n"
                    "  mta_sts = { enabled = true; ca_file = \"%s\"; timeout = 5; };\n"
                    % (os.path.join(receiver.dir, "tls", "cert.pem"),
                       os.path.join(pki, "ca.pem")),
                    users=("alice@a.test", "carol@a.test"))
    s.add_alias("list@a.test", "bob@b.test", "carol@a.test")
    s.set("srs.domain", "a.test")
    s.start()
    yield s
    finish(s)


def find_all(srv, address, marker):
    return tern_harness.find_stored(srv, address, marker)


CONNECT = re.compile(r"mod=queue event=connect qid=(\w+) host=\"?([^\s\"]+)\"? ip=(\S+) "
                     r"port=(\d+) tls=(\S+)")


def hops(srv, rcpt):
    """[(host, ip, port, tls)] of the connections the sender's queue opened
    for the message(s) holding rcpt, in order (from its log)."""
    log = srv.log()
    qids = set(re.findall(r"qid=(\w+) rcpt=%s " % re.escape(rcpt), log))
    return [(m.group(2), m.group(3), int(m.group(4)), m.group(5))
            for m in CONNECT.finditer(log) if m.group(1) in qids]


def sender_lines(srv, rcpt, event):
    """The sender's log lines of event (delivered, deferred, ...) for rcpt."""
    return [ln for ln in srv.log().splitlines()
            if "event=%s" % event in ln and rcpt in ln]


def test_lowest_mx_refuses_next_mx_delivers(sender, receiver):
    submit(sender, ["max@mx.test"], "via mx")
    got = wait_for(lambda: find(receiver, "max@mx.test", b"body of via mx"))
    assert got, sender.log_tail()
    trace, msg = tern_harness.split_stored(got)
    # the sender's own Received line, then the message as submitted
    assert msg.startswith(b"Received: ") and msg.endswith(compose(["max@mx.test"], "via mx"))
    assert b"Delivered-To: max@mx.test" in trace
    # the lowest MX first (refused), then the next, both on port 25
    assert hops(sender, "max@mx.test") == [
        ("dead.mx.test", DEAD_ADDR, 25, "opportunistic"),
        ("live.mx.test", MX_ADDR, 25, "opportunistic")], sender.log()
    assert "host=live.mx.test attempts=1" in sender_lines(sender, "max@mx.test",
                                                          "delivered")[0]
    assert wait_for(lambda: not [m for m in queue_json(sender)
                                 if m["recipients"][0]["address"] == "max@mx.test"])


def test_4xx_deferred_then_delivered_on_retry(sender, receiver):
    submit(sender, ["full@b.test"], "over quota first")
    d = deferred(sender, "full@b.test")
    assert d, sender.log_tail()
    assert "452" in d[0]["last_error"] and "4.2.2" in d[0]["last_error"], d
    assert d[0]["attempts"] >= 1
    assert find(receiver, "full@b.test", b"body of over quota first") is None
    assert "rcpt=full@b.test code=452" in receiver.log(), receiver.log_tail()
    # the administrator raises the quota; the next retry (retry_min 2 s) delivers
    p = receiver.tern("user", "quota", "full@b.test", "0")
    assert p.returncode == 0, p.stderr
    got = wait_for(lambda: find(receiver, "full@b.test", b"body of over quota first"))
    assert got, sender.log_tail()
    assert wait_for(lambda: not [r for m in queue_json(sender) for r in m["recipients"]
                                 if r["address"] == "full@b.test"])
    done = sender_lines(sender, "full@b.test", "delivered")
    assert len(done) == 1, done
    assert int(re.search(r"attempts=(\d+)", done[0]).group(1)) >= 2, done
    assert sender_lines(sender, "full@b.test", "deferred")
    assert set(hops(sender, "full@b.test")) == {("mx.b.test", MX_ADDR, 25, "opportunistic")}
    assert len(find_all(receiver, "full@b.test", b"body of over quota first")) == 1


def test_5xx_bounces_with_dsn_other_recipient_delivered(sender, receiver):
    submit(sender, ["bob@b.test", "nobody@b.test"], "half bounce")
    assert wait_for(lambda: find(receiver, "bob@b.test", b"body of half bounce"))
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"nobody@b.test"))
    assert dsn, sender.log_tail()
    assert b"multipart/report" in dsn and b"report-type=delivery-status" in dsn
    assert b"Action: failed" in dsn and b"Status: 5.1.1" in dsn
    assert re.search(rb"Final-Recipient: rfc822; ?nobody@b\.test", dsn), dsn
    assert b"550" in dsn                            # the remote reply
    assert b"Subject: half bounce" in dsn          # the original's headers come back
    assert b"bob@b.test" not in dsn.split(b"message/delivery-status", 1)[1].split(
        b"text/rfc822-headers")[0]                 # only the failed recipient is reported
    assert wait_for(lambda: not [r for m in queue_json(sender) for r in m["recipients"]
                                 if r["address"] == "nobody@b.test"])


def test_null_mx_and_nxdomain_bounce_at_once(sender, receiver):
    # gone.mx.test: a name inside a served zone that does not exist (NXDOMAIN)
    submit(sender, ["x@nullmx.test", "y@nothere.test", "z@gone.mx.test"], "no way")
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"Final-Recipient: rfc822; x@nullmx.test"))
    assert dsn and b"null MX" in dsn and b"Action: failed" in dsn, sender.log_tail()
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"Final-Recipient: rfc822; z@gone.mx.test"))
    assert dsn and b"does not exist" in dsn, sender.log_tail()
    dsn = wait_for(lambda: find(sender, "alice@a.test", b"Final-Recipient: rfc822; y@nothere.test"))
    assert dsn and b"no mail server" in dsn, sender.log_tail()
    for r in ("x@nullmx.test", "y@nothere.test", "z@gone.mx.test"):
        assert sender_lines(sender, r, "bounced"), sender.log_tail()
        assert not sender_lines(sender, r, "deferred"), "not at once: " + r
        assert hops(sender, r) == [], "a connection for " + r
    assert wait_for(lambda: not [x for m in queue_json(sender) for x in m["recipients"]
                                 if x["address"].endswith(("nullmx.test", "nothere.test",
                                                           "gone.mx.test"))])


def test_dane_match_delivers_over_tls(sender, receiver):
    submit(sender, ["dan@dane.test"], "dane ok")
    got = wait_for(lambda: find(receiver, "dan@dane.test", b"body of dane ok"))
    assert got, sender.log_tail()
    assert b"with ESMTPS" in got                    # TLS at the receiver
    assert sender_lines(sender, "dan@dane.test", "delivered"), sender.log()
    assert hops(sender, "dan@dane.test") == [("mx.dane.test", MX_ADDR, 25, "dane")], \
        sender.log()


def test_dane_mismatch_defers_never_in_clear(sender, receiver, wire):
    before = len(wire.sent())
    submit(sender, ["bad@badtlsa.test"], "dane bad")
    d = deferred(sender, "bad@badtlsa.test")
    assert d, sender.log_tail()
    assert d[0]["last_error"], d
    assert hops(sender, "bad@badtlsa.test")[0] == ("mx.badtlsa.test", WIRE_ADDR, 25, "dane")
    assert find(receiver, "bad@badtlsa.test", b"body of dane bad") is None
    assert_nothing_in_clear(wire, before)
    assert not sender_lines(sender, "bad@badtlsa.test", "delivered")


def test_mta_sts_enforce_bad_certificate_defers(sender, receiver, policy, wire):
    before = len(wire.sent())
    submit(sender, ["user@sts-enf.test"], "sts enforce bad cert")
    d = deferred(sender, "user@sts-enf.test")
    assert d, sender.log_tail()
    assert "certificate" in d[0]["last_error"], d
    # the policy came from https://mta-sts.sts-enf.test (port 443)
    assert "mta-sts.sts-enf.test" in policy.fetches
    assert "result=certificate-not-valid" in sender.log()
    assert hops(sender, "user@sts-enf.test")[0][:3] == ("mx.sts-enf.test", WIRE_ADDR, 25)
    assert find(receiver, "user@sts-enf.test", b"body of sts enforce bad cert") is None
    assert_nothing_in_clear(wire, before)


def test_smarthost_with_starttls_and_auth(smarthost, dns):
    def queue_conf(s):
        pw = os.path.join(s.dir, "smarthost.pw")
        with open(pw, "w") as f:
            f.write(RELAY_PASSWORD + "\n")
        os.chmod(pw, 0o644)   # the worker reads it after dropping privileges
        return ("  scan_interval = 1;\n  retry_min = 2;\n  ca_file = \"%s\";\n"
                "  smarthost = { host = \"%s\"; port = 587; user = \"alice@a.test\";\n"
                "                password_file = \"%s\"; };\n"
                % (os.path.join(smarthost.dir, "tls", "cert.pem"), tern_harness.HOSTNAME, pw))

    s = make_sender("sh-send", dns, queue_conf)
    try:
        s.start()
        submit(s, ["bob@b.test"], "via smarthost")
        got = wait_for(lambda: find(smarthost, "bob@b.test", b"body of via smarthost"))
        assert got, s.log_tail()
        assert b"with ESMTPSA" in got                # TLS and AUTH at the smarthost
        assert wait_for(lambda: queue_json(s) == [])
        log = s.log()
        assert "smarthost=yes" in log and "tls=verify" in log and "verified=yes" in log, log
        assert sender_lines(s, "bob@b.test", "delivered"), log
        assert [(h, ip, port) for h, ip, port, _ in hops(s, "bob@b.test")] == [
            (tern_harness.HOSTNAME, SMARTHOST_ADDR, 587)], log
        # the smarthost saw an authenticated submission from alice
        assert re.search(r"auth.*alice@a\.test|alice@a\.test.*auth", smarthost.log(), re.I), \
            smarthost.log_tail()
    finally:
        finish(s)


def srs_address(stored):
    m = re.match(rb"Return-Path: <([^>]*)>", stored)
    assert m, stored[:200]
    return m.group(1).decode()


def test_forwarding_with_srs_and_bounce_back(sender, receiver):
    rcpt, data = smtp_send(sender, "orig@origin.test", ["list@a.test"], message("forward one"))
    assert rcpt[0][0] == 250 and data[0] == 250, (rcpt, data)
    got = wait_for(lambda: find(receiver, "bob@b.test", b"body of forward one"))
    assert got, sender.log_tail()
    srs = srs_address(got)
    assert re.match(r"(?i)SRS0=[^=]{4}=[A-Z2-7]{2}=origin\.test=orig@a\.test$", srs), srs
    _, msg = tern_harness.split_stored(got)
    # the forwarder's Received line on top of the message itself, unchanged
    assert msg.startswith(b"Received: ") and msg.endswith(message("forward one").encode())
    local = find(sender, "carol@a.test", b"body of forward one")
    assert local and srs_address(local) == "orig@origin.test"

    # the receiving side bounces it: a DSN from <> to the SRS address, which
    # the forwarder sends on to the original sender through origin.test's MX
    dsn = ("From: MAILER-DAEMON@b.test\r\nTo: %s\r\nSubject: Undelivered Mail\r\n\r\n"
           "bounce for forward one\r\n" % srs)
    rcpt, data = smtp_send(sender, "", [srs], dsn)
    assert rcpt[0][0] == 250 and data[0] == 250, (rcpt, data)
    back = wait_for(lambda: find(receiver, "orig@origin.test", b"bounce for forward one"))
    assert back, sender.log_tail()
    assert back.startswith(b"Return-Path: <>")
    assert b"Delivered-To: orig@origin.test" in back
    assert "event=srs_reversed" in sender.log()
    assert sender_lines(sender, "orig@origin.test", "delivered"), sender.log_tail()
    assert ("mx.origin.test", MX_ADDR, 25, "opportunistic") in hops(sender, "orig@origin.test")


# ---- kill -9 of the sender during 1000 deliveries ------------------------

TOTAL = 1000
CLIENTS = 4
CONNECTIONS = 4                 # queue.connections: the in-flight bound
DRAIN_LIMIT = 60 * tern_harness.SCALE
MSGID = re.compile(rb"^Message-ID:\s*<([^>]*)>", re.I | re.M)
SINK = "sink@crash.test"


def crash_message(n):
    mid = "qc-%04d@a.test" % n
    body = "".join("line %d of message %d\r\n" % (i, n) for i in range(8))
    return mid, ("From: alice@a.test\r\nTo: %s\r\nSubject: crash %d\r\n"
                 "Message-ID: <%s>\r\n\r\n%s" % (SINK, n, mid, body)).encode()


class Submitter(threading.Thread):
    """Submit the numbers in todo over one connection, PIPELINING the
    envelope and DATA (RFC 2920); acked holds the Message-IDs that got a
    250."""

    def __init__(self, srv, todo):
        super().__init__(daemon=True)
        self.srv, self.todo = srv, todo
        self.acked = []
        self.error = None

    def run(self):
        try:
            c = SmtpConn(self.srv.port("submissions"), host=self.srv.host, tls=True,
                         timeout=30 * tern_harness.SCALE)
            assert c.reply().code == 220
            r = c.cmd("EHLO qc.test")
            assert r.code == 250 and r.has("PIPELINING"), r
            tok = base64.b64encode(b"\0alice@a.test\0" + PASSWORD.encode()).decode()
            r = c.cmd("AUTH PLAIN " + tok)
            assert r.code == 235, r
            for n in self.todo:
                mid, msg = crash_message(n)
                c.send("MAIL FROM:<alice@a.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % SINK)
                codes = [c.reply().code for _ in range(3)]
                assert codes == [250, 250, 354], (n, codes)
                c.send(dot_stuff(msg) + b".\r\n")
                r = c.reply()
                assert r.code == 250, (n, r)
                self.acked.append(mid)
            c.cmd("QUIT")
            c.close()
        except Exception as e:          # reported by the test, not lost in the thread
            self.error = repr(e)


def received_ids(srv):
    """Message-ID -> number of copies in the sink's INBOX."""
    count = collections.Counter()
    for data in srv.messages(SINK):
        m = MSGID.search(data)
        count[m.group(1).decode() if m else "<none>"] += 1
    return count


def stored_count(srv):
    return srv.query("SELECT count(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id"
                     " JOIN users u ON b.user_id = u.id WHERE u.address = ?", (SINK,))[0][0]


def test_kill9_mid_delivery_loses_nothing(receiver, dns):
    """1000 messages to crash.test (MX: the receiver, port 25); SIGKILL of
    the sender's whole process group once the receiver stored a fifth of
    them; restart on the same folder; the queue drains.  Every message
    that got its 250 arrives; copies beyond one are at most
    queue.connections (one delivery in flight per connection, whose
    outcome the sender had not recorded, is tried again after the
    restart); connections_per_domain equals connections, so this one
    destination uses them all."""
    send = make_sender("qc-send", dns,
                       "  scan_interval = 1;\n  retry_min = 1;\n  retry_max = 2;\n"
                       "  connections = %d;\n  connections_per_domain = %d;\n"
                       % (CONNECTIONS, CONNECTIONS))
    try:
        send.start()
        subs = [Submitter(send, range(i, TOTAL, CLIENTS)) for i in range(CLIENTS)]
        for s in subs:
            s.start()
        for s in subs:
            s.join(120 * tern_harness.SCALE)
        assert all(not s.is_alive() for s in subs), "submission hung"
        errors = [s.error for s in subs if s.error]
        assert not errors, errors
        acked = [mid for s in subs for mid in s.acked]
        assert len(acked) == TOTAL == len(set(acked))

        # kill in the middle: some delivered, some still queued (delivery is
        # slower than submission, which only writes the queue)
        at_kill = stored_count(receiver)
        deadline = time.monotonic() + 30 * tern_harness.SCALE
        while at_kill < TOTAL // 5 and time.monotonic() < deadline:
            time.sleep(0.05)
            at_kill = stored_count(receiver)
        assert at_kill < TOTAL, "delivery finished before the kill: no crash was tested"
        send.kill9_all()
        assert not send.running()
        left = None
        send.start()
        start = time.monotonic()
        while time.monotonic() - start < DRAIN_LIMIT:
            left = len(queue_json(send))
            if left == 0:
                break
            time.sleep(0.5)
        drain = time.monotonic() - start
        assert left == 0, "queue not empty %ds after restart: %s\n%s" % (
            DRAIN_LIMIT, left, send.log_tail())

        got = received_ids(receiver)
        missing = sorted(set(acked) - set(got))
        assert not missing, "lost %d messages, e.g. %s" % (len(missing), missing[:5])
        extra = sorted(k for k in got if k not in set(acked))
        assert not extra, extra[:5]
        dups = sum(n - 1 for n in got.values())
        print("stored at kill=%d drain=%.1fs duplicates=%d" % (at_kill, drain, dups))
        assert dups <= CONNECTIONS, "%d duplicates (bound %d): %s" % (
            dups, CONNECTIONS, [k for k, n in got.items() if n > 1][:10])
        # over port 25 of the MX, from the MX records
        assert set(hops(send, SINK)) == {("mx.crash.test", MX_ADDR, 25, "opportunistic")}, \
            send.log_tail()
        # nothing bounced back to alice; both stores consistent after the crash
        assert tern_harness.find_stored(send, "alice@a.test", b"multipart/report") == []
        for srv in (send, receiver):
            p = srv.tern("store", "verify", timeout=120)
            assert p.returncode == 0, "store verify: %s%s" % (p.stdout, p.stderr)
    finally:
        finish(send)
