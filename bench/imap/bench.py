"""IMAP load generator and driver for bench/imap/run.sh (see there).

One fixed workload per client session, every command timed from its last
byte sent to its tagged reply:
  LOGIN, SELECT INBOX, FETCH 1:* (FLAGS ENVELOPE), FETCH 100 whole
  messages (BODY.PEEK[]), SEARCH TEXT "zebra", STORE +FLAGS.SILENT
  (\\Flagged) on 50, STORE -FLAGS.SILENT the same, COPY 20 to "Copies",
  EXPUNGE, IDLE (until "+", 100 ms, DONE), LOGOUT.
C client processes (multiprocessing) run it R times each, against Tern and
then a private Dovecot holding the same messages."""
import multiprocessing
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "harness"))
import tern as tern_harness  # noqa: E402

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


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.s.makefile("rb", buffering=1 << 16)
        self.n = 0
        if not self.f.readline().startswith(b"* OK"):
            raise RuntimeError("no greeting")

    def read_tagged(self, tag):
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("connection closed")
            while line.endswith(b"}\r\n"):
                m = re.search(rb"\{(\d+)\}\r\n$", line)
                if not m:
                    break
                self.f.read(int(m.group(1)))
                line = self.f.readline()
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
    port, k, count, rounds = args
    lat = {c: [] for c in COMMANDS}
    try:
        for _ in range(rounds):
            t = time.perf_counter()
            c = Conn(port)
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
            t = time.perf_counter()
            c.n += 1
            tag = b"t%d" % c.n
            c.s.sendall(tag + b" IDLE\r\n")
            while not c.f.readline().startswith(b"+"):
                pass
            time.sleep(0.1)
            c.s.sendall(b"DONE\r\n")
            c.read_tagged(tag)
            lat["IDLE"].append(time.perf_counter() - t - 0.1)
            t = time.perf_counter()
            c.cmd("LOGOUT")
            lat["LOGOUT"].append(time.perf_counter() - t)
            c.s.close()
    except Exception as e:  # reported, and the run fails
        return None, "client %d: %s" % (k, e)
    return lat, None


def run_load(name, port, clients, count, rounds):
    t0 = time.perf_counter()
    with multiprocessing.Pool(clients) as pool:
        res = pool.map(client, [(port, k, count, rounds) for k in range(clients)])
    wall = time.perf_counter() - t0
    errors = [e for _, e in res if e]
    lat = {c: [] for c in COMMANDS}
    for r, _ in res:
        if r:
            for c in COMMANDS:
                lat[c] += r[c]
    ncmd = sum(len(v) for v in lat.values())
    return {"name": name, "wall": wall, "cps": ncmd / wall if wall else 0, "lat": lat,
            "errors": errors, "ncmd": ncmd}


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def fill_tern(srv, count):
    c = Conn(srv.port("imap"))
    c.cmd("LOGIN %s %s" % (USER, PASSWORD))
    c.cmd("CREATE Copies")
    for start in range(0, count, 100):
        out = bytearray()
        tags = []
        for i in range(start, min(count, start + 100)):
            m = message(i)
            c.n += 1
            tags.append(b"t%d" % c.n)
            out += b"%s APPEND INBOX {%d+}\r\n%s\r\n" % (tags[-1], len(m), m)
        c.s.sendall(out)
        for t in tags:
            c.read_tagged(t)
    c.cmd("LOGOUT")


DOVECOT_CONF = """
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
mail_max_userip_connections = 10000
passdb {{
  driver = static
  args = password={pw}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
# Dovecot's documented high-performance login mode: long-lived login
# processes instead of one per connection, process limits raised
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
}}
service imap {{
  process_limit = 1024
  process_min_avail = {clients}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_dovecot(d, count, clients):
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    md = os.path.join(d, "home", USER, "Maildir")
    for sub in ("cur", "new", "tmp", ".Copies/cur", ".Copies/new", ".Copies/tmp"):
        os.makedirs(os.path.join(md, sub))
    for i in range(count):
        with open(os.path.join(md, "cur", "%d.M%dP1.bench:2," % (1700000000 + i, i)), "wb") as f:
            f.write(message(i))
    with open(os.path.join(md, "subscriptions"), "w") as f:
        f.write("Copies\n")
    subprocess.run(["chown", "-R", "%d:%d" % (nobody.pw_uid, nobody.pw_gid),
                    os.path.join(d, "home")], check=True)
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(d=d, port=port, uid=nobody.pw_uid, gid=nobody.pw_gid,
                                    clients=min(clients, 100), pw=PASSWORD))
    subprocess.run(["/usr/sbin/dovecot", "-c", conf], check=True)
    try:
        return conf, wait_dovecot(d, port)
    except Exception:
        subprocess.run(["/usr/sbin/dovecot", "-c", conf, "stop"], capture_output=True)
        raise


def wait_dovecot(d, port):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    # index the mailbox once, as a client that already synced would
                    c = Conn(port)
                    c.cmd("LOGIN %s %s" % (USER, PASSWORD))
                    c.cmd("SELECT INBOX")
                    c.cmd("LOGOUT")
                    return port
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("dovecot did not start; see %s/dovecot.log" % d)


def report(results):
    for r in results:
        print("%s: %d commands in %.2f s = %.0f commands/s%s" % (
            r["name"], r["ncmd"], r["wall"], r["cps"],
            "" if not r["errors"] else "  FAILED: %s" % "; ".join(r["errors"][:3])))
    print("%-11s" % "command" + "".join("  %-9s median   p99 (ms)" % r["name"] for r in results))
    for c in COMMANDS:
        row = "%-11s" % c
        for r in results:
            v = r["lat"][c]
            row += "  %12.1f %9.1f      " % (1000 * statistics.median(v) if v else float("nan"),
                                             1000 * pct(v, 99))
        print(row)


def main():
    quick = "--quick" in sys.argv
    count = int(os.environ.get("BENCH_MESSAGES", "500" if quick else "10000"))
    clients = int(os.environ.get("BENCH_CLIENTS", "50"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "1" if quick else "2"))
    systems = os.environ.get("BENCH_ONLY", "tern dovecot").split()
    if "dovecot" in systems and (os.geteuid() != 0 or not os.path.exists("/usr/sbin/dovecot")
                                 or not os.path.exists("/usr/lib/dovecot/imap")):
        print("dovecot: skipped (needs root and dovecot-imapd)")
        systems.remove("dovecot")
    print("workload: %d clients x %d round(s), mailbox of %d messages" % (clients, rounds, count))
    tmp = tempfile.mkdtemp(prefix="tern-bench-imap-")
    os.chmod(tmp, 0o755)    # Dovecot's mail processes run as nobody
    results = []
    srv = conf = None
    try:
        if "tern" in systems:
            srv = tern_harness.TernServer(name="bench-imap", config={
                "imap.plaintext_auth_loopback": True, "imap.connections_per_user": 0,
                "limits.connections_per_ip": 10000, "limits.connections": 20000})
            srv.add_domain("bench.test")
            srv.add_user(USER, PASSWORD)
            srv.start()
            t = time.perf_counter()
            fill_tern(srv, count)
            print("tern: %d messages appended in %.1f s" % (count, time.perf_counter() - t))
            results.append(run_load("tern", srv.port("imap"), clients, count, rounds))
            srv.stop()
        if "dovecot" in systems:
            conf, port = start_dovecot(os.path.join(tmp, "dv"), count, clients)
            results.append(run_load("dovecot", port, clients, count, rounds))
    finally:
        if conf:
            subprocess.run(["/usr/sbin/dovecot", "-c", conf, "stop"], capture_output=True)
        if srv is not None:
            if srv.running():
                srv.stop()
            if not os.environ.get("BENCH_KEEP"):
                srv.cleanup()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    if not results:
        return 1
    report(results)
    for r in results:
        print("%s_commands_per_s=%.0f" % (r["name"], r["cps"]))
    byname = {r["name"]: r for r in results}
    if "tern" in byname and "dovecot" in byname and byname["dovecot"]["cps"] > 0:
        print("ratio_tern_dovecot=%.2f" % (byname["tern"]["cps"] / byname["dovecot"]["cps"]))
    return 1 if any(r["errors"] for r in results) or not results else 0


if __name__ == "__main__":
    sys.exit(main())
