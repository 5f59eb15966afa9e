#!/usr/bin/python3
"""Outbound SMTP benchmark (issue #6): how fast does a server pass
submitted mail on to remote domains?

M messages of 4 KiB, each to one recipient in one of D remote domains
(d00.test ... d49.test), are submitted over C pipelined connections
(RFC 2920) to the sending server, which queues them and delivers them to
the domains' next hop: one smtp-sink (Debian's postfix package) on a high
loopback port, which speaks SMTP and counts messages.  Wall time runs
from the first submission to the moment the sink has counted all M.

  tern     a fresh `tern init` instance; submission on its implicit-TLS
           port with AUTH PLAIN (its only way to relay); every message
           is committed to the queue (fsync'd) before its 250;
           queue.routes gives each domain the sink as fixed next hop;
           queue.connections = 20, connections_per_domain = 5
  postfix  a private Postfix (own config and queue under /var/tmp, high
           port, never /etc/postfix, never port 25): smtpd relays for
           127.0.0.0/8 in clear text (Postfix needs a SASL server for
           AUTH); transport_maps gives each domain the same fixed next
           hop; 20 smtp(8) processes, destination concurrency 20 (all
           domains share the one next hop, which Postfix counts as one
           destination: this gives it the same 20 deliveries in flight)

Both reuse a session to the sink for the next message (Tern's idle
session cache, Postfix's smtp_connection_cache_on_demand, both on by
default).  Besides the wall time, each server's CPU time (user + system
of its processes, reaped children included) and the load generator's are
printed: on a shared machine they say more than the wall time.

Next hops are static for both (queue.routes, transport_maps): Postfix
resolves through /etc/resolv.conf only, which cannot name the test DNS's
port, so neither server resolves MX records here.

Then the queue listing: L messages to a domain whose route leads to a
tarpit (they all stay queued; see queue_listing), submitted to a second
Tern the same way, and the time of `tern queue list` and
`tern queue list --json` (best of 3 each).

  bench.py           5000 messages, 50 domains, 10 connections;
                     listing with 100 000 queued messages
  bench.py --quick   300 messages, listing with 2000 (< 30 s)
Environment: TERN_BIN, BENCH_MESSAGES, BENCH_DOMAINS, BENCH_CONNECTIONS,
BENCH_QUEUE_MESSAGES, BENCH_ONLY ("tern" skips Postfix), BENCH_KEEP=1.
Output ends with: tern_msgs_per_s=N postfix_msgs_per_s=N
ratio_tern_postfix=R queue_list_messages=N queue_list_s=T
queue_list_json_s=T.  Exit status 1 when a server lost a message or
timed out."""
import base64
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK = "--quick" in sys.argv[1:]
M = int(os.environ.get("BENCH_MESSAGES", 300 if QUICK else 5000))
D = int(os.environ.get("BENCH_DOMAINS", 50))
C = int(os.environ.get("BENCH_CONNECTIONS", 10))
L = int(os.environ.get("BENCH_QUEUE_MESSAGES", 2000 if QUICK else 100000))
ONLY = os.environ.get("BENCH_ONLY", "tern postfix").split()
TERN_BIN = os.environ.get("TERN_BIN") or os.path.join(ROOT, "build", "tern")
DELIVER_LIMIT = 20 if QUICK else 600     # seconds from first submission
SIZE = 4096
SENDER = "sender@src.test"
PASSWORD = "bench-%d" % random.randrange(10 ** 9)
SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def port_free(port):
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
            return False
        except OSError:
            return True


def pick_port():
    for _ in range(200):
        p = random.randrange(20000, 32000)
        if port_free(p):
            return p
    raise RuntimeError("no free port")


def wait_listen(port, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if not port_free(port):
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------- load
def message(i, rcpt):
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: bench %d\r\nMessage-ID: <bench-%d@src.test>\r\n"
            "Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n\r\n" % (SENDER, rcpt, i, i))
    line = ("%06d " % i) * 11 + "\r\n"          # 79 bytes, never a leading dot
    body = line * (SIZE // len(line) + 1)
    return (head + body[:SIZE - 2] + "\r\n").encode()


class Conn:
    def __init__(self, port, tls):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        self.s, self.buf = s, b""

    def reply(self):
        """The code of the next (possibly multi-line) reply."""
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                d = self.s.recv(65536)
                if not d:
                    raise RuntimeError("connection closed")
                self.buf += d
                continue
            line, self.buf = self.buf[:i], self.buf[i + 2:]
            if line[3:4] != b"-":
                return int(line[:3])

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()


def submit_worker(args):
    """Submit messages numbered first, first+step, ... < last over one
    connection; returns the number accepted."""
    port, tls, auth, numbers, rcpt_fmt = args
    c = Conn(port, tls)
    assert c.reply() == 220
    assert c.cmd("EHLO load.test") == 250
    if auth:
        tok = base64.b64encode(("\0%s\0%s" % (SENDER, PASSWORD)).encode()).decode()
        code = c.cmd("AUTH PLAIN " + tok)
        assert code == 235, code
    ok = 0
    for i in numbers:
        rcpt = rcpt_fmt(i)
        c.s.sendall(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, rcpt)).encode())
        codes = [c.reply(), c.reply(), c.reply()]
        if codes != [250, 250, 354]:
            raise RuntimeError("message %d: replies %s" % (i, codes))
        c.s.sendall(message(i, rcpt) + b".\r\n")
        code = c.reply()
        if code != 250:
            raise RuntimeError("message %d: %d after DATA" % (i, code))
        ok += 1
    c.cmd("QUIT")
    return ok


def rcpt_domains(i):
    return "u%d@d%02d.test" % (i, i % D)


def rcpt_dead(i):
    return "q%d@dead.test" % i


def submit(port, tls, auth, count, rcpt_fmt, conns=C):
    jobs = [(port, tls, auth, range(k, count, conns), rcpt_fmt) for k in range(conns)]
    with multiprocessing.Pool(conns) as pool:
        return sum(pool.map(submit_worker, jobs))


# ------------------------------------------------------------- sink
class Sink:
    def __init__(self, work):
        self.port = pick_port()
        self.out = os.path.join(work, "sink.out")
        user = ["-u", "nobody"] if os.getuid() == 0 else []
        self.f = open(self.out, "wb")
        # -c: count messages on stdout; backlog 256
        self.proc = subprocess.Popen([SINK] + user + ["-c", "127.0.0.1:%d" % self.port, "256"],
                                     stdout=self.f, stderr=subprocess.STDOUT)
        if not wait_listen(self.port, 10):
            raise RuntimeError("smtp-sink did not start")

    def count(self):
        with open(self.out, "rb") as f:
            data = f.read().replace(b"\r", b"\n")
        n = re.findall(rb"mesg=(\d+)", data)
        return int(n[-1]) if n else 0

    def wait(self, want, deadline):
        while time.monotonic() < deadline:
            if self.count() >= want:
                return time.monotonic()
            time.sleep(0.02)
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.f.close()


# ------------------------------------------------------------- Tern
def session_cpu(sid):
    """CPU seconds (user + system) of the processes of session sid: the
    live ones, and the children they have reaped (Postfix's daemons come
    and go under its master)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (field 3): session is field 6, utime 14,
        # stime 15, cutime 16, cstime 17
        if int(fields[3]) == sid:
            total += sum(int(x) for x in fields[11:15])
    return total / tick


def client_cpu():
    """CPU seconds used so far by this script's reaped children (the load
    generator's processes)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Tern:
    def __init__(self, work, name, routes, connections, per_domain):
        self.dir = os.path.join(work, name)
        for _ in range(50):
            off = random.randrange(20000, 31000)
            if all(port_free(p + off) for p in (25, 587, 465, 143, 993, 110, 995, 80, 443)):
                break
        self.off = off
        self.conf = os.path.join(self.dir, "tern.conf")
        self.run("init", self.dir, "--hostname", "bench-tern.example.test", "--bind", "127.0.0.1",
                 "--port-offset", str(off), conf=False)
        self.run("domain", "add", "src.test")
        self.run("user", "add", SENDER, input=PASSWORD + "\n")
        routes = ["{ domain = \"%s\"; host = \"127.0.0.1\"; port = %d; }" % r for r in routes]
        with open(self.conf, "a") as f:
            f.write("\nqueue = {\n  scan_interval = 1;\n  connections = %d;\n"
                    "  connections_per_domain = %d;\n  routes = (\n    %s\n  );\n};\n"
                    % (connections, per_domain, ",\n    ".join(routes)))
        self.log = open(os.path.join(work, name + ".log"), "wb")
        self.proc = subprocess.Popen([TERN_BIN, "-c", self.conf, "serve"], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        if not wait_listen(465 + off, 15) or self.proc.poll() is not None:
            raise RuntimeError("tern did not start")

    def cpu(self):
        """CPU seconds (user + system) used so far by the server's
        processes (its session: master and worker)."""
        return session_cpu(self.proc.pid)

    def run(self, *args, conf=True, input=None, timeout=120):
        cmd = [TERN_BIN] + (["-c", self.conf] if conf else []) + list(args)
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("%s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p

    def stop(self):
        try:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        self.log.close()


def run_tern(work, sink):
    t = Tern(work, "tern", [("d%02d.test" % k, sink.port) for k in range(D)], 20, 5)
    try:
        base = sink.count()
        cpu0, ccpu0 = t.cpu(), client_cpu()
        t0 = time.monotonic()
        n = submit(465 + t.off, True, True, M, rcpt_domains)
        t_sub = time.monotonic()
        ccpu1 = client_cpu()
        t1 = sink.wait(base + M, t0 + DELIVER_LIMIT)
        cpu1 = t.cpu()
        if t1 is None:
            log("tern: the sink counted %d of %d" % (sink.count() - base, M))
            return None
        left = json.loads(t.run("queue", "list", "--json").stdout)
        if n != M or left:
            log("tern: %d accepted, %d left in the queue" % (n, len(left)))
            return None
        log("tern: %d messages, submitted in %.2f s, delivered in %.2f s: %.1f msg/s;"
            " server CPU %.2f s (%.0f us a message), load generator CPU %.2f s"
            % (M, t_sub - t0, t1 - t0, M / (t1 - t0), cpu1 - cpu0, (cpu1 - cpu0) * 1e6 / M,
               ccpu1 - ccpu0))
        return M / (t1 - t0)
    finally:
        t.stop()


def queue_listing(work):
    """A Tern whose one route leads to a tarpit (a listening socket that
    never accepts: the kernel completes the handshake, no greeting ever
    comes, and the client waits its 5 minutes, RFC 5321 4.5.3.2), with
    queue.connections = connections_per_domain = 5: every delivery slot is
    taken at once, so the L submitted messages all stay queued."""
    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(64)
    t = Tern(work, "tern-queue", [("dead.test", tarpit.getsockname()[1])], 5, 5)
    try:
        return fill_and_list(t)
    finally:
        t.stop()
        tarpit.close()


def fill_and_list(t):
    t0 = time.monotonic()
    n = submit(465 + t.off, True, True, L, rcpt_dead)
    log("queue: %d messages for dead.test submitted in %.1f s" % (n, time.monotonic() - t0))
    timings = {}
    for mode, extra in (("text", []), ("json", ["--json"])):
        best = None
        for _ in range(3):
            a = time.monotonic()
            p = t.run("queue", "list", *extra, timeout=300)
            dt = time.monotonic() - a
            best = dt if best is None else min(best, dt)
        timings[mode] = best
        if mode == "json":
            listed = len(json.loads(p.stdout))
    log("queue: `tern queue list` %.3f s, --json %.3f s (best of 3), %d listed"
        % (timings["text"], timings["json"], listed))
    return listed, timings


# ------------------------------------------------------------- Postfix
class Postfix:
    def __init__(self, work, sink_port):
        d = self.d = os.path.join(work, "postfix")
        self.conf = os.path.join(d, "etc")
        self.port = pick_port()
        for sub in ("etc", "queue", "data"):
            os.makedirs(os.path.join(d, sub))
        shutil.chown(os.path.join(d, "data"), "postfix", "postfix")
        with open(os.path.join(self.conf, "transport"), "w") as f:
            for k in range(D):
                f.write("d%02d.test smtp:[127.0.0.1]:%d\n" % (k, sink_port))
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write("""# Private benchmark instance: nothing here touches /etc/postfix's instance.
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench-postfix.example.test
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
transport_maps = texthash:{c}/transport
default_transport = error:benchmark instance: no such destination
smtp_destination_concurrency_limit = 20
smtp_tls_security_level = none
biff = no
smtpd_banner = $myhostname ESMTP
maillog_file = {d}/maillog
""".format(d=d, c=self.conf))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write("""127.0.0.1:{p} inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - 20 smtp
relay     unix - - n - 20 smtp
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
showq     unix n - n - - showq
postlog   unix-dgram n - n - 1 postlogd
""".format(p=self.port))
        p = subprocess.run([POSTFIX, "-c", self.conf, "start"], capture_output=True, text=True,
                           timeout=30)
        if p.returncode != 0 or not wait_listen(self.port, 15):
            self.stop()
            raise RuntimeError("postfix start failed: %s%s" % (p.stdout, p.stderr))

    def cpu(self):
        """CPU seconds used so far by the instance (its master's session:
        the daemons alive, and those the master reaped)."""
        try:
            with open(os.path.join(self.d, "queue", "pid", "master.pid")) as f:
                return session_cpu(os.getsid(int(f.read().split()[0])))
        except (OSError, ValueError, IndexError):
            return 0.0

    def stop(self):
        subprocess.run([POSTFIX, "-c", self.conf, "abort"], capture_output=True, timeout=20)
        pidf = os.path.join(self.d, "queue", "pid", "master.pid")
        for _ in range(50):
            try:
                with open(pidf) as f:
                    os.kill(int(f.read().split()[0]), 0)
            except (OSError, ValueError, IndexError):
                break
            time.sleep(0.1)

    def queue_empty(self):
        q = os.path.join(self.d, "queue")
        for sub in ("incoming", "active", "deferred", "maildrop", "hold"):
            for _dirpath, _dirs, files in os.walk(os.path.join(q, sub)):
                if files:
                    return False
        return True


def run_postfix(work, sink):
    pf = Postfix(work, sink.port)
    try:
        base = sink.count()
        cpu0, ccpu0 = pf.cpu(), client_cpu()
        t0 = time.monotonic()
        n = submit(pf.port, False, False, M, rcpt_domains)
        t_sub = time.monotonic()
        ccpu1 = client_cpu()
        t1 = sink.wait(base + M, t0 + DELIVER_LIMIT)
        cpu1 = pf.cpu()
        if t1 is None or n != M:
            log("postfix: %d accepted, the sink counted %d of %d" % (n, sink.count() - base, M))
            return None
        log("postfix: %d messages, submitted in %.2f s, delivered in %.2f s: %.1f msg/s;"
            " server CPU %.2f s (%.0f us a message), load generator CPU %.2f s"
            % (M, t_sub - t0, t1 - t0, M / (t1 - t0), cpu1 - cpu0, (cpu1 - cpu0) * 1e6 / M,
               ccpu1 - ccpu0))
        return M / (t1 - t0)
    finally:
        pf.stop()


def main():
    if not os.access(TERN_BIN, os.X_OK):
        log("%s missing (run make)" % TERN_BIN)
        return 1
    if not os.access(SINK, os.X_OK):
        log("%s missing: apt-get install postfix" % SINK)
        return 1
    only = list(ONLY)
    if "postfix" in only and os.getuid() != 0:
        log("not root: skipping the private Postfix instance (it needs root)")
        only.remove("postfix")
    os.umask(0o022)
    # /var/tmp, not TMPDIR: Postfix's daemons (postfix, nobody) must reach it
    work = tempfile.mkdtemp(prefix="tern-bench-out.", dir="/var/tmp")
    os.chmod(work, 0o755)
    log("%s: %d messages of %d bytes to %d domains over %d connections; listing %d"
        % ("quick" if QUICK else "full", M, SIZE, D, C, L))
    sink = Sink(work)
    failed = []
    res = {}
    try:
        try:
            res["tern"] = run_tern(work, sink)
        except Exception as e:
            log("tern: %s" % e)
            res["tern"] = None
        if res["tern"] is None:
            failed.append("tern")
        try:
            listed, timings = queue_listing(work)
        except Exception as e:
            log("queue: %s" % e)
            listed, timings = 0, {"text": 0, "json": 0}
        if listed != L:
            log("queue: listed %d of %d" % (listed, L))
            failed.append("queue-list")
        if "postfix" in only:
            try:
                res["postfix"] = run_postfix(work, sink)
            except Exception as e:
                log("postfix: %s" % e)
                res["postfix"] = None
            if res["postfix"] is None:
                failed.append("postfix")
    finally:
        sink.stop()
        if os.environ.get("BENCH_KEEP"):
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for k in ("tern", "postfix"):
        if k in res:
            print("%s_msgs_per_s=%.1f" % (k, res[k] or 0))
    if res.get("tern") and res.get("postfix"):
        print("ratio_tern_postfix=%.2f" % (res["tern"] / res["postfix"]))
    print("queue_list_messages=%d" % listed)
    print("queue_list_s=%.3f" % timings["text"])
    print("queue_list_json_s=%.3f" % timings["json"])
    if failed:
        log("FAILED: %s" % " ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
