"""IMAP load generator and driver for bench/imap/run.sh (see there).

One fixed workload per client session, every command timed from its last
byte sent to its tagged reply:
  LOGIN, SELECT INBOX, FETCH 1:* (FLAGS ENVELOPE), FETCH 100 whole
  messages (BODY.PEEK[]), SEARCH TEXT "zebra", STORE +FLAGS.SILENT
  (\\Flagged) on 50, STORE -FLAGS.SILENT the same, COPY 20 to "Copies",
  EXPUNGE, IDLE (until "+", 100 ms, DONE), LOGOUT.
C client processes (multiprocessing) run it R times each, against Tern and
then a private Dovecot (bench/imap/dovecot.py) holding the same messages
and verifying the same password hash.  Before the clients start, each
server is warmed the same way by two untimed sessions (SELECT, FETCH 1:*
(FLAGS ENVELOPE), SEARCH), and Tern is left to finish its background
indexing.  Every client has a per-command timeout and the whole run a
deadline: a client that hits either stops and is reported, the run does
not hang."""
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "harness"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True     # no __pycache__ in bench/imap
import tern as tern_harness  # noqa: E402
import dovecot as dv  # noqa: E402

USER, PASSWORD = "bench@bench.test", "bench-Secret-1"
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
         "mike november oscar papa quebec romeo sierra tango uniform victor").split()
COMMANDS = ("LOGIN", "SELECT", "FETCH-ENV", "FETCH-BODY", "SEARCH", "STORE+", "STORE-",
            "COPY", "EXPUNGE", "IDLE", "LOGOUT")


def message(i):
    words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(60))
    if i % 100 == 7:
        words += " zebra"
    body = "".join("%s %d\r\n" % (words, k) for k in range(3 + i % 20))
    return ("From: Sender %d <s%d@remote.test>\r\nTo: <%s>\r\nSubject: bench message %d\r\n"
            "Message-ID: <b%06d@bench.test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s"
            % (i, i, USER, i, i, body)).encode()


class Timeout(Exception):
    pass


class Conn:
    """A plaintext IMAP connection.  Every read is bounded by the command
    timeout and by the run's deadline (monotonic clock)."""

    def __init__(self, port, cmd_timeout=120, deadline=None):
        self.cmd_timeout = cmd_timeout
        self.deadline = deadline
        self.s = socket.create_connection(("127.0.0.1", port), timeout=self._budget())
        self.f = self.s.makefile("rb", buffering=1 << 16)
        self.n = 0
        self.hits = 0           # untagged "* SEARCH" numbers of the last SEARCH
        if not self.readline().startswith(b"* OK"):
            raise RuntimeError("no greeting")

    def _budget(self):
        t = self.cmd_timeout
        if self.deadline is not None:
            t = min(t, self.deadline - time.monotonic())
        if t <= 0:
            raise Timeout("run deadline reached")
        return t

    def readline(self):
        try:
            return self.f.readline()
        except socket.timeout:
            raise Timeout("no reply within %g s" % self.cmd_timeout)

    def read_tagged(self, tag):
        self.s.settimeout(self._budget())
        while True:
            line = self.readline()
            if not line:
                raise RuntimeError("connection closed")
            while line.endswith(b"}\r\n"):
                m = re.search(rb"\{(\d+)\}\r\n$", line)
                if not m:
                    break
                try:
                    self.f.read(int(m.group(1)))
                except socket.timeout:
                    raise Timeout("no reply within %g s" % self.cmd_timeout)
                line = self.readline()
            if line.startswith(b"* SEARCH"):
                self.hits = len(line.split()) - 2
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError("%r" % line[:200])
                return

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        self.read_tagged(tag)


def client(args):
    port, k, count, rounds, cmd_timeout, deadline = args
    lat = {c: [] for c in COMMANDS}
    name = "connect"
    try:
        for _ in range(rounds):
            name = "LOGIN"
            t = time.perf_counter()
            c = Conn(port, cmd_timeout, deadline)
            c.cmd("LOGIN %s %s" % (USER, PASSWORD))
            lat["LOGIN"].append(time.perf_counter() - t)
            lo = 1 + (k * 37) % max(1, count - 100)
            steps = (("SELECT", "SELECT INBOX"), ("FETCH-ENV", "FETCH 1:* (FLAGS ENVELOPE)"),
                     ("FETCH-BODY", "FETCH %d:%d (BODY.PEEK[])" % (lo, lo + 99)),
                     ("SEARCH", 'SEARCH TEXT "zebra"'),
                     ("STORE+", "STORE %d:%d +FLAGS.SILENT (\\Flagged)" % (lo, lo + 49)),
                     ("STORE-", "STORE %d:%d -FLAGS.SILENT (\\Flagged)" % (lo, lo + 49)),
                     ("COPY", "COPY %d:%d Copies" % (lo, lo + 19)), ("EXPUNGE", "EXPUNGE"))
            for name, text in steps:
                t = time.perf_counter()
                c.cmd(text)
                lat[name].append(time.perf_counter() - t)
                if name == "SEARCH" and c.hits != count // 100:
                    raise RuntimeError("SEARCH found %d messages, expected %d"
                                       % (c.hits, count // 100))
            name = "IDLE"
            t = time.perf_counter()
            c.n += 1
            tag = b"t%d" % c.n
            c.s.sendall(tag + b" IDLE\r\n")
            c.s.settimeout(c._budget())
            while True:
                line = c.readline()
                if not line:
                    raise RuntimeError("connection closed in IDLE")
                if line.startswith(b"+"):
                    break
            time.sleep(0.1)
            c.s.sendall(b"DONE\r\n")
            c.read_tagged(tag)
            lat["IDLE"].append(time.perf_counter() - t - 0.1)
            name = "LOGOUT"
            t = time.perf_counter()
            c.cmd("LOGOUT")
            lat["LOGOUT"].append(time.perf_counter() - t)
            c.s.close()
    except Timeout as e:
        return lat, "client %d: %s: timeout (%s)" % (k, name, e)
    except Exception as e:  # reported, and the run fails
        return lat, "client %d: %s: %s" % (k, name, e)
    return lat, None


def run_load(name, port, pids_fn, clients, count, rounds, cmd_timeout, limit):
    """Run the clients; returns the figures.  pids_fn() lists the server's
    processes, for its CPU time during the run."""
    cpu0 = dv.cpu_seconds(pids_fn())
    t0 = time.perf_counter()
    deadline = time.monotonic() + limit
    with multiprocessing.Pool(clients) as pool:
        res = pool.map(client, [(port, k, count, rounds, cmd_timeout, deadline)
                                for k in range(clients)])
    wall = time.perf_counter() - t0
    cpu = dv.cpu_seconds(pids_fn()) - cpu0
    errors = [e for _, e in res if e]
    lat = {c: [] for c in COMMANDS}
    for r, _ in res:
        for c in COMMANDS:
            lat[c] += r[c]
    ncmd = sum(len(v) for v in lat.values())
    return {"name": name, "wall": wall, "cps": ncmd / wall if wall else 0, "lat": lat,
            "errors": errors, "ncmd": ncmd, "cpu": cpu,
            "timeouts": sum(1 for e in errors if "timeout" in e)}


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def warm(port, count):
    """The same untimed warm-up on both servers: two sessions (Dovecot
    makes a cache field permanent once a second session uses it) that
    select INBOX, fetch every envelope and search once."""
    for _ in range(2):
        c = Conn(port, 300)
        c.cmd("LOGIN %s %s" % (USER, PASSWORD))
        c.cmd("SELECT INBOX")
        c.cmd("FETCH 1:* (FLAGS ENVELOPE)")
        c.cmd('SEARCH TEXT "zebra"')
        if c.hits != count // 100:
            raise RuntimeError("warm-up SEARCH found %d, expected %d" % (c.hits, count // 100))
        c.cmd("LOGOUT")


def fill_tern(srv, count, make=message):
    """Append messages make(0) .. make(count - 1) to the bench user's INBOX
    (pipelined, 100 per round trip) and create "Copies"."""
    c = Conn(srv.port("imap"), 300)
    c.cmd("LOGIN %s %s" % (USER, PASSWORD))
    c.cmd("CREATE Copies")
    for start in range(0, count, 100):
        out = bytearray()
        tags = []
        for i in range(start, min(count, start + 100)):
            m = make(i)
            c.n += 1
            tags.append(b"t%d" % c.n)
            out += b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (tags[-1], len(m), m)
        c.s.sendall(out)
        for t in tags:
            c.read_tagged(t)
    c.cmd("LOGOUT")


def prepare_dovecot(dc, srv, count, clients, fts=False, make=message, compress=False):
    """Give the private Dovecot the same messages (make(i)) and the same
    password hash as Tern's bench user; fts / compress: see Dovecot.write."""
    dc.passwd(srv.query("SELECT address, password_hash FROM users"))
    md = dc.maildir(USER, ("Copies",))
    for i in range(count):
        data = make(i)
        with open(os.path.join(md, "cur", dv.maildir_name(i, data)), "wb") as f:
            f.write(data)
    dc.write(clients, imap_avail=min(clients, 100), fts=fts, compress=compress)


def cleanup(dc, srv, tmp):
    """Stop the Dovecot and Tern still running; remove their folders unless
    BENCH_KEEP is set."""
    if dc:
        dc.stop()
    if srv is not None:
        if srv.running():
            srv.stop()
        if not os.environ.get("BENCH_KEEP"):
            srv.cleanup()
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("kept %s %s" % (srv.dir if srv else "", tmp))


def report(results):
    for r in results:
        print("%s: %d commands in %.2f s = %.0f commands/s; server CPU %.1f s%s" % (
            r["name"], r["ncmd"], r["wall"], r["cps"], r["cpu"],
            "" if not r["errors"] else "  FAILED (%d clients, %d timeouts): %s" % (
                len(r["errors"]), r["timeouts"], "; ".join(r["errors"][:3]))))
    # the ratio columns: the other server's latency over Tern's (above 1:
    # Tern is faster), when the first result is Tern's
    base = results[0] if results[0]["name"] == "tern" else None
    others = [r for r in results[1:]] if base else []
    print("latency (ms)" + "".join("  %12s med     p99" % r["name"] for r in results)
          + "".join("  %s/tern med   p99" % r["name"] for r in others))
    for c in COMMANDS:
        row = "%-12s" % c
        for r in results:
            v = r["lat"][c]
            row += "  %12.1f %8.1f" % (1000 * statistics.median(v) if v else float("nan"),
                                      1000 * pct(v, 99))
        for r in others:
            bv, ov = base["lat"][c], r["lat"][c]
            if bv and ov and min(bv) > 0:
                row += "  %*.2f %6.2f" % (len(r["name"]) + 6,
                                          statistics.median(ov) / statistics.median(bv),
                                          pct(ov, 99) / pct(bv, 99))
        print(row)


def main():
    quick = "--quick" in sys.argv
    count = int(os.environ.get("BENCH_MESSAGES", "500" if quick else "10000"))
    clients = int(os.environ.get("BENCH_CLIENTS", "50"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "1" if quick else "2"))
    cmd_timeout = float(os.environ.get("BENCH_CMD_TIMEOUT", "20" if quick else "120"))
    limit = float(os.environ.get("BENCH_RUN_LIMIT", "25" if quick else "300"))
    systems = os.environ.get("BENCH_ONLY", "tern dovecot").split()
    why = dv.available()
    for name in ("dovecot", "dovecot-fts"):
        if name in systems and why:
            print("%s: skipped (%s)" % (name, why))
            systems.remove(name)
    if "dovecot-fts" in systems and not os.path.exists(dv.FTS_PLUGIN):
        print("dovecot-fts: skipped (needs the Debian package dovecot-fts-xapian)")
        systems.remove("dovecot-fts")
    print("workload: %d clients x %d round(s), mailbox of %d messages; command timeout %.0f s,"
          " run limit %.0f s per server" % (clients, rounds, count, cmd_timeout, limit))
    tmp = tempfile.mkdtemp(prefix="tern-bench-imap-")
    os.chmod(tmp, 0o755)    # Dovecot's mail processes run as nobody
    results = []
    srv = dc = None
    failed = False
    try:
        srv = tern_harness.TernServer(name="bench-imap", config={
            "imap.plaintext_auth_loopback": True, "imap.connections_per_user": 0,
            "limits.connections_per_ip": 10000, "limits.connections": 20000})
        srv.add_domain("bench.test")
        srv.add_user(USER, PASSWORD)
        srv.start()
        t = time.perf_counter()
        fill_tern(srv, count)
        print("tern: %d messages appended in %.1f s" % (count, time.perf_counter() - t))

        def tern_pids():
            return dv.tree(srv.pid)
        dv.settle(tern_pids)
        if "tern" in systems:
            warm(srv.port("imap"), count)
            dv.settle(tern_pids)
            results.append(run_load("tern", srv.port("imap"), tern_pids, clients, count,
                                    rounds, cmd_timeout, limit))
        srv.stop()
        for name in [x for x in systems if x.startswith("dovecot")]:
            t = time.perf_counter()
            dc = dv.Dovecot(os.path.join(tmp, name))
            prepare_dovecot(dc, srv, count, clients, fts=name == "dovecot-fts")
            dc.start()
            warm(dc.port, count)
            dv.settle(dc.pids, quiet=1.0)
            print("%s: Maildir written, started and warmed in %.1f s"
                  % (name, time.perf_counter() - t))
            results.append(run_load(name, dc.port, dc.pids, clients, count, rounds,
                                    cmd_timeout, limit))
            for w in dc.log_warnings()[:5]:
                print("%s log: %s" % (name, w))
            dc.stop()
            dc = None
    except Exception as e:
        print("bench: %s" % e)
        failed = True
    finally:
        cleanup(dc, srv, tmp)
    if not results:
        return 1
    report(results)
    for r in results:
        key = r["name"].replace("-", "_")
        print("%s_commands_per_s=%.0f" % (key, r["cps"]))
        print("%s_timeouts=%d" % (key, r["timeouts"]))
    byname = {r["name"]: r for r in results}
    for other in ("dovecot", "dovecot-fts"):
        if "tern" in byname and other in byname and byname[other]["cps"] > 0:
            print("ratio_tern_%s=%.2f" % (other.replace("-", "_"),
                                          byname["tern"]["cps"] / byname[other]["cps"]))
    return 1 if failed or any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
