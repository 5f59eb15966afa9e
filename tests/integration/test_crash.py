"""Crash test: the promise that a 250 means the message is on disk.

Four client threads send numbered messages to port 25 while the main
thread SIGKILLs the worker or the master (and everything with it) at random
moments, at least 5 times, restarting `tern serve` each time.  Clients
record every number that got 250 and retry on connection errors.  At the
end every acknowledged number must be in the store, byte-exact, and
`tern store verify` must be clean.

Bounded: at most MAX_PER_CLIENT messages per client and DURATION seconds
of load (less under sanitizers); every socket operation has a timeout."""
import os
import random
import signal
import socket
import threading
import time

from smtpc import SmtpConn, ServerClosed, dot_stuff
from tern import SANITIZED, split_stored

CLIENTS = 4
KILLS = 5
DURATION = 8.0 if SANITIZED else 12.0
MAX_PER_CLIENT = 300 if SANITIZED else 1500
RECIPIENTS = ["a@example.test", "b@example.test"]


def message(client, n):
    tag = "crash-%d-%d" % (client, n)
    # a body of a few KB, different for each message, so partial files show
    line = ("%s " % tag) * 8
    body = "".join("%04d %s\r\n" % (i, line) for i in range((n % 7) * 10 + 5))
    return tag, ("From: <c%d@remote.test>\r\nSubject: %s\r\nMessage-ID: <%s@remote.test>\r\n\r\n%s"
                 % (client, tag, tag, body)).encode()


class Client(threading.Thread):
    def __init__(self, idx, port, stop):
        super().__init__(daemon=True)
        self.idx, self.port, self.stop = idx, port, stop
        self.acked = set()
        self.errors = 0
        self.unexpected = []

    def run(self):
        n = 0
        conn = None
        while not self.stop.is_set() and n < MAX_PER_CLIENT:
            try:
                if conn is None:
                    conn = SmtpConn(self.port, timeout=5)
                    if conn.reply().code != 220:
                        raise ServerClosed("no greeting")
                    if conn.cmd("EHLO crash.test").code != 250:
                        raise ServerClosed("EHLO")
                tag, msg = message(self.idx, n)
                r = conn.cmd("MAIL FROM:<c%d@remote.test>" % self.idx)
                if r.code != 250:
                    raise ServerClosed("MAIL %r" % r)
                for rc in RECIPIENTS:
                    r = conn.cmd("RCPT TO:<%s>" % rc)
                    if r.code != 250:
                        raise ServerClosed("RCPT %r" % r)
                if conn.cmd("DATA").code != 354:
                    raise ServerClosed("DATA")
                conn.send(dot_stuff(msg) + b".\r\n")
                r = conn.reply()
                if r.code == 250:
                    self.acked.add(n)
                    n += 1
                elif 400 <= r.code < 500:
                    # temporary failure: retry the same number
                    conn.cmd("RSET")
                else:
                    self.unexpected.append((n, r.lines))
                    n += 1
            except (OSError, ServerClosed, socket.timeout):
                # killed server: reconnect and resend the same number
                self.errors += 1
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn:
            conn.close()


def test_kill9_loses_no_acknowledged_message(tern_factory):
    srv = tern_factory(name="crash")
    seed = int(os.environ.get("TERN_CRASH_SEED", "0")) or random.randrange(1, 1 << 30)
    rnd = random.Random(seed)
    stop = threading.Event()
    clients = [Client(i, srv.port("smtp"), stop) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    start = time.monotonic()
    kills = []
    try:
        gap = DURATION / (KILLS + 1)
        for k in range(KILLS):
            time.sleep(rnd.uniform(0.3 * gap, gap))
            victim = rnd.choice(["worker", "master", "worker-then-master"])
            if victim == "worker":
                w = srv.wait_worker()
                os.kill(w, signal.SIGKILL)
                time.sleep(rnd.uniform(0, 0.2))
            elif victim == "master":
                srv.signal(signal.SIGKILL)
                time.sleep(rnd.uniform(0, 0.1))
            elif victim == "worker-then-master":
                os.kill(srv.wait_worker(), signal.SIGKILL)
                srv.signal(signal.SIGKILL)
            kills.append(victim)
            srv.kill9_all()
            srv.start()
        remaining = DURATION - (time.monotonic() - start)
        if remaining > 0:
            time.sleep(min(remaining, 2.0))
    finally:
        stop.set()
        for c in clients:
            c.join(30)
    assert len(kills) >= KILLS, "TERN_CRASH_SEED=%d" % seed
    assert not any(c.is_alive() for c in clients), "client thread stuck"
    rc = srv.stop()
    assert rc == 0, "SIGTERM after the crash test: exit %s\n%s" % (rc, srv.log_tail())

    total = sum(len(c.acked) for c in clients)
    print("crash test: TERN_CRASH_SEED=%d kills=%s acknowledged=%d reconnects=%d"
          % (seed, ",".join(kills), total, sum(c.errors for c in clients)))
    assert total >= CLIENTS, "almost nothing was acknowledged (%d); log:\n%s" % (total, srv.log_tail())
    for c in clients:
        assert not c.unexpected, "client %d got permanent errors: %r" % (c.idx, c.unexpected[:3])

    for rc_addr in RECIPIENTS:
        stored = {}
        for data in srv.messages(rc_addr):
            trace, body = split_stored(data)
            subj = [l for l in body.split(b"\r\n") if l.startswith(b"Subject: crash-")]
            assert subj, "foreign message in %s: %r" % (rc_addr, data[:200])
            tag = subj[0][len(b"Subject: "):].decode()
            _, ci, ni = tag.split("-")
            want = message(int(ci), int(ni))[1]
            assert body == want, "stored copy of %s for %s is not whole" % (tag, rc_addr)
            stored.setdefault(tag, 0)
            stored[tag] += 1
        missing = ["crash-%d-%d" % (c.idx, n) for c in clients for n in sorted(c.acked)
                   if "crash-%d-%d" % (c.idx, n) not in stored]
        assert not missing, "%d acknowledged messages lost for %s: %s" % (
            len(missing), rc_addr, missing[:10])

    p = srv.tern("store", "verify")
    assert p.returncode == 0, "store verify after crashes: %s%s" % (p.stdout, p.stderr)
