"""IMAP extension benchmark for bench/imap/run.sh (issue #4): SORT, THREAD
and a COMPRESS=DEFLATE session, against Tern and then a private Dovecot
(bench/imap/dovecot.py with the imap_zlib plugin) holding the same
messages and verifying the same password hash.

The mailbox (BENCH_MESSAGES, 10 000; --quick 500) is made for the
operations: every message has its own Date (a permutation of minutes,
written in one of four time zones, so SORT has to convert to UTC), and
the messages form threads of five (a root "bench topic G", then replies
each carrying In-Reply-To and References to the one before), so THREAD
REFERENCES has real parent links to follow.

Three phases per server, each with C clients (BENCH_EXT_CLIENTS, 10)
that first log in and SELECT INBOX untimed, wait for each other, then run
K (BENCH_EXT_ROUNDS, 10; --quick 2) timed operations each:
  SORT     UID SORT (DATE) UTF-8 ALL
  THREAD   UID THREAD REFERENCES UTF-8 ALL
  FETCH-Z  FETCH 1:* (ENVELOPE) in a session that sent COMPRESS DEFLATE
           right after LOGIN (raw deflate both ways, zlib wbits -15)
Rate = operations / wall time from the first timed send to the last
tagged reply of the phase; each operation is timed from its send to its
tagged reply (the client's parsing included, as in bench.py).

Every answer is checked, so a broken server cannot look fast: SORT must
return every UID once, in non-decreasing date order; THREAD must parse,
hold every UID once and have one top-level thread per root message; the
FETCH must return an ENVELOPE for every message.

Warm-up, the same on both, untimed: two sessions (Dovecot makes a cache
field permanent when a second session uses it) each run one SORT, one
THREAD and one compressed FETCH 1:* (ENVELOPE); the first also maps UIDs
to messages for the checks and checks that CAPABILITY after LOGIN offers
SORT, THREAD=REFERENCES and COMPRESS=DEFLATE.  Then the benchmark waits
until the server has used no CPU for a while.

A per-operation timeout (BENCH_CMD_TIMEOUT, 120 s; quick 20 s) and a
deadline per phase (BENCH_RUN_LIMIT, 300 s; quick 25 s) bound the run; a
client that hits either stops and is reported as a timeout.  Exit status
1 when any client of any server failed.  BENCH_EXT_OPS (say "SORT")
runs only the phases listed, BENCH_ONLY="tern" only Tern (for profiling)."""
import calendar
import multiprocessing
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True     # no __pycache__ in bench/imap
import bench  # noqa: E402  (also puts tests/harness on the path)
import dovecot as dv  # noqa: E402
import tern as tern_harness  # noqa: E402

USER, PASSWORD = bench.USER, bench.PASSWORD
OPS = ("SORT", "THREAD", "FETCH-Z")
OP_COMMAND = {"SORT": "UID SORT (DATE) UTF-8 ALL",
              "THREAD": "UID THREAD REFERENCES UTF-8 ALL",
              "FETCH-Z": "FETCH 1:* (ENVELOPE)"}
THREAD_SIZE = 5
ZONES = ((0, "+0000"), (60, "+0100"), (-300, "-0500"), (330, "+0530"))
BASE = calendar.timegm((2024, 1, 1, 0, 0, 0))


def sent_utc(i, count):
    """Message i's Date as seconds since the epoch (UTC): every message a
    different minute when 7919 and count are coprime."""
    return BASE + 60 * ((i * 7919) % max(1, count))


def message(i, count):
    t = sent_utc(i, count)
    off, zone = ZONES[i % len(ZONES)]
    date = time.strftime("%a, %d %b %Y %H:%M:%S ", time.gmtime(t + 60 * off)) + zone
    g, k = divmod(i, THREAD_SIZE)
    head = ("From: Sender %d <s%d@remote.test>\r\nTo: <%s>\r\n" % (i, i, USER))
    if k == 0:
        head += "Subject: bench topic %d\r\n" % g
    else:
        refs = " ".join("<e%06d@bench.test>" % j for j in range(g * THREAD_SIZE, i))
        head += ("Subject: Re: bench topic %d\r\nIn-Reply-To: <e%06d@bench.test>\r\n"
                 "References: %s\r\n" % (g, i - 1, refs))
    body = "".join("line %d of message %d, about topic %d\r\n" % (n, i, g)
                   for n in range(3 + i % 7))
    return ("%sMessage-ID: <e%06d@bench.test>\r\nDate: %s\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s"
            % (head, i, date, body)).encode()


class Timeout(Exception):
    pass


class Conn:
    """A plaintext IMAP connection that can turn on COMPRESS=DEFLATE.
    Responses are read whole (literals inlined); every read is bounded by
    the command timeout and the phase deadline."""

    def __init__(self, port, cmd_timeout=120, deadline=None):
        self.cmd_timeout = cmd_timeout
        self.deadline = deadline
        self.s = socket.create_connection(("127.0.0.1", port), timeout=self._budget())
        self.buf = bytearray()
        self.pos = 0
        self.inflate = self.deflate = None
        self.n = 0
        self.wire = 0           # bytes received from the socket
        if not self.response().startswith(b"* OK"):
            raise RuntimeError("no greeting")

    def _budget(self):
        t = self.cmd_timeout
        if self.deadline is not None:
            t = min(t, self.deadline - time.monotonic())
        if t <= 0:
            raise Timeout("deadline reached")
        return t

    def _fill(self):
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        try:
            data = self.s.recv(1 << 18)
        except socket.timeout:
            raise Timeout("no reply within %g s" % self.cmd_timeout)
        if not data:
            raise RuntimeError("connection closed")
        self.wire += len(data)
        if self.inflate is not None:
            data = self.inflate.decompress(data)
        self.buf += data

    def _line(self):
        while True:
            e = self.buf.find(b"\r\n", self.pos)
            if e >= 0:
                line = bytes(self.buf[self.pos:e + 2])
                self.pos = e + 2
                return line
            self._fill()

    def _bytes(self, n):
        while len(self.buf) - self.pos < n:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def response(self):
        """One whole response line, literals included."""
        self.s.settimeout(self._budget())
        line = self._line()
        if not line.endswith(b"}\r\n"):
            return line
        parts = []
        while True:
            m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            if not m:
                parts.append(line)
                return b"".join(parts)
            parts.append(line)
            parts.append(self._bytes(int(m.group(1))))
            line = self._line()

    def send(self, data):
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def cmd(self, text):
        """Send a command; returns its untagged responses.  A reply other
        than OK raises."""
        self.n += 1
        tag = b"t%d " % self.n
        self.send(tag + text.encode() + b"\r\n")
        out = []
        while True:
            r = self.response()
            if r.startswith(tag):
                if not r.startswith(tag + b"OK"):
                    raise RuntimeError("%s: %r" % (text.split()[0], r[:200]))
                return out
            out.append(r)

    def login(self):
        self.cmd("LOGIN %s %s" % (USER, PASSWORD))

    def compress(self):
        """COMPRESS DEFLATE (RFC 4978): everything after the tagged OK is
        raw deflate in both directions."""
        self.cmd("COMPRESS DEFLATE")
        self.inflate = zlib.decompressobj(-15)
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        rest = bytes(self.buf[self.pos:])
        self.buf, self.pos = bytearray(self.inflate.decompress(rest)), 0

    def close(self):
        try:
            self.cmd("LOGOUT")
        finally:
            self.s.close()


def check_sort(untagged, truth):
    """truth: {"uids": set of UIDs, "date": {uid: sent time}}."""
    nums = []
    for r in untagged:
        if r.startswith(b"* SORT"):
            nums += [int(x) for x in r[6:].split()]
    if len(nums) != len(truth["uids"]) or set(nums) != truth["uids"]:
        raise RuntimeError("SORT returned %d UIDs (%d distinct), expected %d"
                           % (len(nums), len(set(nums)), len(truth["uids"])))
    dates = [truth["date"][u] for u in nums]
    bad = sum(1 for a, b in zip(dates, dates[1:]) if b < a)
    if bad:
        raise RuntimeError("SORT (DATE) out of order at %d places" % bad)


THREAD_TOKEN = re.compile(rb"\(|\)|\d+|\s+|.")


def check_thread(untagged, truth):
    text = b"".join(r[8:].rstrip(b"\r\n") for r in untagged if r.startswith(b"* THREAD"))
    depth = roots = 0
    seen = []
    for tok in THREAD_TOKEN.findall(text):
        if tok == b"(":
            if depth == 0:
                roots += 1
            depth += 1
        elif tok == b")":
            depth -= 1
            if depth < 0:
                break
        elif tok.isdigit():
            if depth == 0:
                raise RuntimeError("THREAD: number outside parentheses")
            seen.append(int(tok))
        elif not tok.isspace():
            raise RuntimeError("THREAD: unexpected %r" % tok)
    if depth != 0:
        raise RuntimeError("THREAD: unbalanced parentheses")
    if len(seen) != len(truth["uids"]) or set(seen) != truth["uids"]:
        raise RuntimeError("THREAD holds %d UIDs (%d distinct), expected %d"
                           % (len(seen), len(set(seen)), len(truth["uids"])))
    if roots != truth["threads"]:
        raise RuntimeError("THREAD made %d threads, expected %d" % (roots, truth["threads"]))


FETCH_ENV = re.compile(rb"\* \d+ FETCH \(.*ENVELOPE \(", re.S)


def check_fetch(untagged, truth):
    n = sum(1 for r in untagged if FETCH_ENV.match(r))
    if n != len(truth["uids"]):
        raise RuntimeError("FETCH returned %d envelopes, expected %d" % (n, len(truth["uids"])))


CHECK = {"SORT": check_sort, "THREAD": check_thread, "FETCH-Z": check_fetch}

_barrier = None


def _init(barrier):
    global _barrier
    _barrier = barrier


def client(args):
    """One client of one phase: set up untimed, wait for the others, run
    the timed operations.  Returns (latencies, first send, last reply,
    bytes received for them, error)."""
    port, k, op, rounds, truth, cmd_timeout, deadline = args
    lat, t_first, t_last, wire = [], None, None, 0
    where = "connect"
    try:
        try:
            c = Conn(port, cmd_timeout, deadline)
            where = "LOGIN"
            c.login()
            if op == "FETCH-Z":
                where = "COMPRESS"
                c.compress()
            where = "SELECT"
            c.cmd("SELECT INBOX")
        except BaseException:
            _barrier.abort()
            raise
        where = "waiting for the other clients"
        _barrier.wait(max(1.0, deadline - time.monotonic()))
        where = op
        wire0 = c.wire
        for _ in range(rounds):
            t = time.monotonic()
            if t_first is None:
                t_first = t
            untagged = c.cmd(OP_COMMAND[op])
            t_last = time.monotonic()
            lat.append(t_last - t)
            CHECK[op](untagged, truth)
        wire = c.wire - wire0
        where = "LOGOUT"
        c.close()
    except threading.BrokenBarrierError:
        return lat, t_first, t_last, wire, "client %d: %s: another client failed" % (k, op)
    except Timeout as e:
        return lat, t_first, t_last, wire, "client %d: %s: timeout (%s)" % (k, where, e)
    except Exception as e:  # reported, and the run fails
        return lat, t_first, t_last, wire, "client %d: %s: %s" % (k, where, e)
    return lat, t_first, t_last, wire, None


def run_phase(name, op, port, pids_fn, clients, rounds, truth, cmd_timeout, limit):
    deadline = time.monotonic() + limit
    # the driver is one more party: it reads the server's CPU time once
    # every client has logged in, so the figure leaves out the logins
    barrier = multiprocessing.Barrier(clients + 1)
    with multiprocessing.Pool(clients, initializer=_init, initargs=(barrier,)) as pool:
        job = pool.map_async(client, [(port, k, op, rounds, truth, cmd_timeout, deadline)
                                      for k in range(clients)])
        try:
            barrier.wait(max(1.0, deadline - time.monotonic()))
        except threading.BrokenBarrierError:
            pass    # a client failed; it says why
        cpu0 = dv.cpu_seconds(pids_fn())
        res = job.get()
    cpu = dv.cpu_seconds(pids_fn()) - cpu0
    lat = [x for r in res for x in r[0]]
    starts = [r[1] for r in res if r[1] is not None]
    ends = [r[2] for r in res if r[2] is not None]
    wall = max(ends) - min(starts) if starts and ends else 0.0
    errors = [r[4] for r in res if r[4]]
    wire = sum(r[3] for r in res)
    return {"name": name, "op": op, "n": len(lat), "wall": wall,
            "rate": len(lat) / wall if wall > 0 else 0.0, "lat": lat, "cpu": cpu,
            "errors": errors, "wire": wire, "timeouts": sum(1 for e in errors if "timeout" in e)}


def warm(port, count):
    """The untimed warm-up (see the module comment); returns the truth the
    clients check answers against."""
    truth = None
    for n in range(2):
        c = Conn(port, 300)
        c.login()
        if n == 0:
            caps = b" ".join(r for r in c.cmd("CAPABILITY") if r.startswith(b"* CAPABILITY"))
            caps = set(caps.upper().split())
            missing = [x for x in ("SORT", "THREAD=REFERENCES", "COMPRESS=DEFLATE")
                       if x.encode() not in caps]
            if missing:
                raise RuntimeError("CAPABILITY after LOGIN lacks %s" % " ".join(missing))
        c.compress()
        c.cmd("SELECT INBOX")
        if truth is None:
            truth = {"uids": set(), "date": {}, "threads": (count + THREAD_SIZE - 1)
                     // THREAD_SIZE}
            for r in c.cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"):
                u = re.search(rb"UID (\d+)", r)
                m = re.search(rb"<e(\d+)@bench.test>", r)
                if not u or not m:
                    continue
                uid, i = int(u.group(1)), int(m.group(1))
                truth["uids"].add(uid)
                truth["date"][uid] = sent_utc(i, count)
            if len(truth["uids"]) != count:
                raise RuntimeError("warm-up: %d messages in INBOX, expected %d"
                                   % (len(truth["uids"]), count))
        for op in OPS:
            CHECK[op](c.cmd(OP_COMMAND[op]), truth)
        c.close()
    return truth


def report(results):
    for r in results:
        print("ext %s %-8s %4d ops in %6.2f s = %7.2f ops/s; median %8.1f ms, p99 %8.1f ms;"
              " server CPU %.1f s (%.1f ms/op); %.0f KiB/op received%s" % (
                  r["name"], r["op"], r["n"], r["wall"], r["rate"],
                  1000 * statistics.median(r["lat"]) if r["lat"] else float("nan"),
                  1000 * bench.pct(r["lat"], 99), r["cpu"],
                  1000 * r["cpu"] / r["n"] if r["n"] else float("nan"),
                  r["wire"] / 1024 / r["n"] if r["n"] else float("nan"),
                  "" if not r["errors"] else "  FAILED (%d clients, %d timeouts): %s" % (
                      len(r["errors"]), r["timeouts"], "; ".join(r["errors"][:3]))))
    by = {(r["name"], r["op"]): r for r in results}
    for r in results:
        key = "%s_%s" % (r["name"], r["op"].lower().replace("-", "_"))
        print("%s_ops_per_s=%.2f" % (key, r["rate"]))
    for op in OPS:
        t, d = by.get(("tern", op)), by.get(("dovecot", op))
        if t and d and d["rate"] > 0 and t["lat"] and d["lat"]:
            key = op.lower().replace("-", "_")
            print("ratio_tern_dovecot_%s=%.2f  (median latency dovecot/tern %.2f, p99 %.2f)" % (
                key, t["rate"] / d["rate"],
                statistics.median(d["lat"]) / statistics.median(t["lat"]),
                bench.pct(d["lat"], 99) / bench.pct(t["lat"], 99)))


def main():
    quick = "--quick" in sys.argv
    count = int(os.environ.get("BENCH_MESSAGES", "500" if quick else "10000"))
    clients = int(os.environ.get("BENCH_EXT_CLIENTS", "10"))
    rounds = int(os.environ.get("BENCH_EXT_ROUNDS", "2" if quick else "10"))
    cmd_timeout = float(os.environ.get("BENCH_CMD_TIMEOUT", "20" if quick else "120"))
    limit = float(os.environ.get("BENCH_RUN_LIMIT", "25" if quick else "300"))
    ops = [x for x in os.environ.get("BENCH_EXT_OPS", " ".join(OPS)).split() if x in OPS]
    systems = [x for x in os.environ.get("BENCH_ONLY", "tern dovecot").split()
               if x in ("tern", "dovecot")]
    why = dv.available() or (None if os.path.exists(dv.COMPRESS_PLUGIN)
                             else "needs Dovecot's imap_zlib plugin")
    if "dovecot" in systems and why:
        print("ext dovecot: skipped (%s)" % why)
        systems.remove("dovecot")
    print("ext workload: %d clients x %d of each of %s (FETCH-Z: compressed FETCH 1:*"
          " (ENVELOPE)), mailbox of %d messages in threads of %d; command timeout %.0f s,"
          " phase limit %.0f s" % (clients, rounds, ", ".join(ops), count, THREAD_SIZE,
                                   cmd_timeout, limit))

    def make(i):
        return message(i, count)
    tmp = tempfile.mkdtemp(prefix="tern-bench-imap-ext-")
    os.chmod(tmp, 0o755)    # Dovecot's mail processes run as nobody
    results = []
    srv = dc = None
    failed = False
    try:
        srv = tern_harness.TernServer(name="bench-imap-ext", config={
            "imap.plaintext_auth_loopback": True, "imap.connections_per_user": 0,
            "limits.connections_per_ip": 10000, "limits.connections": 20000})
        srv.add_domain("bench.test")
        srv.add_user(USER, PASSWORD)
        srv.start()
        t = time.perf_counter()
        bench.fill_tern(srv, count, make)
        print("ext tern: %d messages appended in %.1f s" % (count, time.perf_counter() - t))

        def tern_pids():
            return dv.tree(srv.pid)
        dv.settle(tern_pids)
        if "tern" in systems:
            truth = warm(srv.port("imap"), count)
            dv.settle(tern_pids)
            for op in ops:
                results.append(run_phase("tern", op, srv.port("imap"), tern_pids, clients,
                                         rounds, truth, cmd_timeout, limit))
        srv.stop()
        if "dovecot" in systems:
            t = time.perf_counter()
            dc = dv.Dovecot(os.path.join(tmp, "dovecot"))
            bench.prepare_dovecot(dc, srv, count, clients, make=make, compress=True)
            dc.start()
            truth = warm(dc.port, count)
            dv.settle(dc.pids, quiet=1.0)
            print("ext dovecot: Maildir written, started and warmed in %.1f s"
                  % (time.perf_counter() - t))
            for op in ops:
                results.append(run_phase("dovecot", op, dc.port, dc.pids, clients, rounds,
                                         truth, cmd_timeout, limit))
            for w in dc.log_warnings()[:5]:
                print("ext dovecot log: %s" % w)
            dc.stop()
            dc = None
    except Exception as e:
        print("ext bench: %s" % e)
        failed = True
    finally:
        bench.cleanup(dc, srv, tmp)
    if results:
        report(results)
    return 1 if failed or not results or any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
