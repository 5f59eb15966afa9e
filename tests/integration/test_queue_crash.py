"""Queue durability: kill -9 of the sending Tern in the middle of delivering
1000 messages loses none, and repeats at most the deliveries in flight.

A sending Tern (a.test) routes b.test to a receiving Tern (queue.routes).
Four submission connections (implicit TLS, AUTH PLAIN, commands
pipelined per RFC 2920) hand the sender 1000 small messages, each with a
unique Message-ID, and record every one that got its 250.  When the
receiver has stored some of them and the sender's queue still holds
others, the sender's whole process group gets SIGKILL; it restarts on the
same folder, and the test waits until `tern queue list --json` is empty.

Then at the receiver, counted by Message-ID: every acknowledged message is
there, and the copies beyond one are at most queue.connections (a delivery
the receiver took whose outcome the sender had not yet recorded is tried
again after the restart: at most one per connection in flight).  With
connections_per_domain equal to connections, one destination uses them
all.  Afterwards `tern store verify` is clean on both.  Bounded: the
delivery after the restart must finish within 60 s (more under
sanitizers); every socket read has a timeout."""
import base64
import collections
import json
import re
import threading
import time

import pytest

import tern as tern_harness
from conftest import finish
from smtpc import SmtpConn, dot_stuff

PASSWORD = "qc-Secret-1"
TOTAL = 1000
CLIENTS = 4
CONNECTIONS = 4                 # queue.connections: the in-flight bound
DRAIN_LIMIT = 60 * tern_harness.SCALE
MSGID = re.compile(rb"^Message-ID:\s*<([^>]*)>", re.I | re.M)


@pytest.fixture
def pair():
    made = []
    try:
        recv = tern_harness.TernServer(name="qc-recv")
        made.append(recv)
        recv.add_domain("b.test")
        recv.add_user("bob@b.test", PASSWORD)
        recv.start()
        send = tern_harness.TernServer(name="qc-send")
        made.append(send)
        send.add_domain("a.test")
        send.add_user("alice@a.test", PASSWORD)
        with open(send.conf, "a") as f:
            f.write("\nqueue = {\n  scan_interval = 1;\n  retry_min = 1;\n  retry_max = 2;\n"
                    "  connections = %d;\n  connections_per_domain = %d;\n"
                    "  routes = ( { domain = \"b.test\"; host = \"127.0.0.1\"; port = %d; } );\n"
                    "};\n" % (CONNECTIONS, CONNECTIONS, recv.port("smtp")))
        send.start()
        yield send, recv
    finally:
        for s in made:
            finish(s)


def message(n):
    mid = "qc-%04d@a.test" % n
    body = "".join("line %d of message %d\r\n" % (i, n) for i in range(8))
    return mid, ("From: alice@a.test\r\nTo: bob@b.test\r\nSubject: crash %d\r\n"
                 "Message-ID: <%s>\r\n\r\n%s" % (n, mid, body)).encode()


class Submitter(threading.Thread):
    """Submit the numbers in todo over one connection, PIPELINING the
    envelope and DATA; acked holds the Message-IDs that got a 250."""

    def __init__(self, port, todo):
        super().__init__(daemon=True)
        self.port, self.todo = port, todo
        self.acked = []
        self.error = None

    def run(self):
        try:
            c = SmtpConn(self.port, tls=True, timeout=30 * tern_harness.SCALE)
            assert c.reply().code == 220
            r = c.cmd("EHLO qc.test")
            assert r.code == 250 and r.has("PIPELINING"), r
            tok = base64.b64encode(b"\0alice@a.test\0" + PASSWORD.encode()).decode()
            r = c.cmd("AUTH PLAIN " + tok)
            assert r.code == 235, r
            for n in self.todo:
                mid, msg = message(n)
                c.send("MAIL FROM:<alice@a.test>\r\nRCPT TO:<bob@b.test>\r\nDATA\r\n")
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


def queue_len(srv):
    p = srv.tern("queue", "list", "--json", timeout=30)
    assert p.returncode == 0, p.stderr
    return len(json.loads(p.stdout))


def received_ids(srv):
    """Message-ID -> number of copies in bob's INBOX at the receiver."""
    count = collections.Counter()
    for data in srv.messages("bob@b.test"):
        m = MSGID.search(data)
        count[m.group(1).decode() if m else "<none>"] += 1
    return count


def stored_count(srv):
    return srv.query("SELECT count(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id"
                     " JOIN users u ON b.user_id = u.id WHERE u.address = 'bob@b.test'")[0][0]


def test_kill9_mid_delivery_loses_nothing(pair):
    send, recv = pair
    subs = [Submitter(send.port("submissions"), range(i, TOTAL, CLIENTS)) for i in range(CLIENTS)]
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
    at_kill = stored_count(recv)
    deadline = time.monotonic() + 30 * tern_harness.SCALE
    while at_kill < TOTAL // 5 and time.monotonic() < deadline:
        time.sleep(0.05)
        at_kill = stored_count(recv)
    assert at_kill < TOTAL, "delivery finished before the kill: no crash was tested"
    send.kill9_all()
    assert not send.running()
    left = None
    send.start()
    start = time.monotonic()
    while time.monotonic() - start < DRAIN_LIMIT:
        left = queue_len(send)
        if left == 0:
            break
        time.sleep(0.5)
    drain = time.monotonic() - start
    assert left == 0, "queue not empty %ds after restart: %s\n%s" % (
        DRAIN_LIMIT, left, send.log_tail())

    got = received_ids(recv)
    missing = sorted(set(acked) - set(got))
    assert not missing, "lost %d messages, e.g. %s" % (len(missing), missing[:5])
    extra = sorted(k for k in got if k not in set(acked))
    assert not extra, extra[:5]
    dups = sum(n - 1 for n in got.values())
    print("stored at kill=%d drain=%.1fs duplicates=%d" % (at_kill, drain, dups))
    assert dups <= CONNECTIONS, "%d duplicates (bound %d): %s" % (
        dups, CONNECTIONS, [k for k, n in got.items() if n > 1][:10])
    # nothing bounced back to alice; both stores consistent after the crash
    assert tern_harness.find_stored(send, "alice@a.test", b"multipart/report") == []
    for srv in (send, recv):
        p = srv.tern("store", "verify", timeout=120)
        assert p.returncode == 0, "store verify: %s%s" % (p.stdout, p.stderr)
