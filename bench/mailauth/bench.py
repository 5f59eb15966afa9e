"""bench/mailauth, run by bench/mailauth/run.sh (which explains the method
and the environment variables); Debian's /usr/bin/python3 with python3-dkim.

Part 1, DKIM rate: N messages of 20 KiB, RSA-2048 and Ed25519 keys made
with openssl; Tern's library (bench/mailauth/rate.c, path in BENCH_RATE)
and dkimpy sign the same messages with the same keys and verify the same
signed messages (those Tern signed), one thread each, RUNS times; medians
and the ratio Tern/dkimpy per algorithm and operation.  Each side also
verifies once what the other signed, so the comparison is known to be
between two correct implementations.

Part 2, port 25: a Tern whose dns group points at the test DNS (nsd)
holding, for each of M sender domains sI.bench.test, an SPF record passing
127.0.0.1, an RSA-2048 DKIM key and (when this Tern has DMARC) a DMARC
record.  M messages, each DKIM-signed by dkimpy for its own domain, are
sent one per connection, one after the other; the time from the end of
the final "." to the 250 is recorded.  With mailauth on: a fresh server
(cold cache, pass 1), then the same domains again (warm cache, pass 2);
with mailauth off: the same on a second fresh server.  Then throughput:
smtp-source sends T copies of one signed message over S sessions to a
fresh server with mailauth on and to one with it off (default settings
otherwise); messages per second, median of RUNS.

Everything is bounded: each SMTP exchange has a socket timeout, each
smtp-source run a timeout, and run.sh a total one.  Exit status 1 when a
signature does not verify on either side, a message is refused or not
stored, or a server does not start."""
import base64
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
import tern as harness  # noqa: E402
import testdns  # noqa: E402

try:
    import dkim
except ImportError:
    sys.exit("bench: python3-dkim missing (apt-get install python3-dkim python3-nacl)")

QUICK = os.environ.get("BENCH_QUICK") == "1"
N = int(os.environ.get("BENCH_MESSAGES") or (20 if QUICK else 300))
RUNS = int(os.environ.get("BENCH_RUNS") or (1 if QUICK else 3))
M = int(os.environ.get("BENCH_SMTP_MESSAGES") or (8 if QUICK else 200))
T = int(os.environ.get("BENCH_LOAD_MESSAGES") or (60 if QUICK else 2000))
S = int(os.environ.get("BENCH_SESSIONS") or (4 if QUICK else 20))
SIZE = 20 * 1024
RATE = os.environ["BENCH_RATE"]
SOURCE = "/usr/sbin/smtp-source"
RCPT = "bob@local.test"
PASSWORD = "bench-Secret-1"
SMTP_TIMEOUT = 30
LOAD_TIMEOUT = 20 if QUICK else 300

WORK = tempfile.mkdtemp(prefix="tern-bench-mailauth-")
os.chmod(WORK, 0o755)
OUT = []          # machine-readable lines, printed at the end


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def result(key, value):
    OUT.append("%s=%s" % (key, value))


def fail(msg):
    log("FAILED: " + msg)
    raise SystemExit(1)


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True,
                          timeout=60).stdout


class Keys:
    def __init__(self):
        self.rsa_pem = os.path.join(WORK, "rsa.pem")
        self.ed_pem = os.path.join(WORK, "ed25519.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", self.rsa_pem)
        openssl("genpkey", "-algorithm", "ED25519", "-out", self.ed_pem)
        rsa_pub = openssl("pkey", "-in", self.rsa_pem, "-pubout", "-outform", "DER")
        ed_pub = openssl("pkey", "-in", self.ed_pem, "-pubout", "-outform", "DER")[-32:]
        ed_seed = openssl("pkey", "-in", self.ed_pem, "-outform", "DER")[-32:]
        with open(self.rsa_pem, "rb") as f:
            self.rsa = f.read()
        self.ed = base64.b64encode(ed_seed)          # dkimpy's Ed25519 form
        self.record = {
            "rsa": "v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_pub).decode(),
            "ed25519": "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_pub).decode(),
        }
        self.pem = {"rsa": self.rsa_pem, "ed25519": self.ed_pem}
        self.dkimpy = {"rsa": self.rsa, "ed25519": self.ed}


WORDS = ("mail server message queue store domain record key signature header "
         "body relay delivery mailbox folder archive invoice meeting report "
         "project schedule update review draft summary quarter budget").split()


def make_message(i, domain, size=SIZE):
    """A plain-text message of about size bytes, CRLF line ends."""
    rnd = random.Random(i)
    head = ("From: Alice <alice@%s>\r\nTo: Bob <%s>\r\nSubject: bench message %d\r\n"
            "Date: Sun, 29 Nov 2026 00:30:00 +0000\r\nMessage-ID: <bench.%d@%s>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (domain, RCPT, i, i, domain)).encode()
    lines = []
    total = len(head)
    while total < size:
        line = " ".join(rnd.choice(WORDS) for _ in range(11)).capitalize() + "."
        lines.append(line)
        total += len(line) + 2
    return head + ("\r\n".join(lines) + "\r\n").encode()


def dkimpy_sign(msg, keys, alg, domain, selector):
    return dkim.sign(msg, selector.encode(), domain.encode(), keys.dkimpy[alg],
                     canonicalize=(b"relaxed", b"relaxed"),
                     signature_algorithm=b"rsa-sha256" if alg == "rsa" else b"ed25519-sha256")


def run_rate(*args):
    p = subprocess.run([RATE] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        fail("%s %s: %s" % (os.path.basename(RATE), args[0], p.stderr.strip()))
    m = re.search(r"median_msgs_per_s=([0-9.]+) passed=(\d+)", p.stdout)
    runs = re.findall(r"run=\d+ msgs_per_s=([0-9.]+)", p.stdout)
    return float(m.group(1)), int(m.group(2)), [float(x) for x in runs]


def fmt(x):
    return "%.1f" % x


# ------------------------------------------------------------ part 1: rate
def part_rate(keys):
    domain, selector = "sig.bench.test", "sel"
    msgdir = os.path.join(WORK, "msgs")
    os.mkdir(msgdir)
    msgs = []
    for i in range(N):
        m = make_message(i, domain)
        msgs.append(m)
        with open(os.path.join(msgdir, "%d.eml" % i), "wb") as f:
            f.write(m)
    log("rate: %d messages of %d bytes, %d run(s), one thread each" % (N, len(msgs[0]), RUNS))
    rows = []
    for alg in ("rsa", "ed25519"):
        record = keys.record[alg]
        recfile = os.path.join(WORK, "record-%s.txt" % alg)
        with open(recfile, "w") as f:
            f.write(record + "\n")
        tern_dir = os.path.join(WORK, "tern-signed-" + alg)
        py_dir = os.path.join(WORK, "dkimpy-signed-" + alg)
        os.mkdir(tern_dir)
        os.mkdir(py_dir)

        t_sign, _, t_sign_runs = run_rate("sign", alg, keys.pem[alg], domain, selector,
                                          msgdir, N, RUNS, tern_dir)
        t_verify, passed, t_verify_runs = run_rate("verify", recfile, domain, selector,
                                                   tern_dir, N, RUNS)

        signed = []
        for i in range(N):
            with open(os.path.join(tern_dir, "%d.eml" % i), "rb") as f:
                signed.append(f.read())

        def dnsfunc(name, timeout=5):
            if name.rstrip(b".") == ("%s._domainkey.%s" % (selector, domain)).encode():
                return record.encode()
            return None

        p_sign_runs, p_verify_runs = [], []
        sigs = [None] * N
        for _ in range(RUNS):
            t0 = time.perf_counter()
            for i, m in enumerate(msgs):
                sigs[i] = dkimpy_sign(m, keys, alg, domain, selector)
            p_sign_runs.append(N / (time.perf_counter() - t0))
        for _ in range(RUNS):
            ok = 0
            t0 = time.perf_counter()
            for m in signed:
                ok += bool(dkim.verify(m, dnsfunc=dnsfunc))
            p_verify_runs.append(N / (time.perf_counter() - t0))
            if ok != N:
                fail("dkimpy verified %d of the %d messages Tern signed (%s)" % (ok, N, alg))
        for i in range(N):
            with open(os.path.join(py_dir, "%d.eml" % i), "wb") as f:
                f.write(sigs[i] + msgs[i])
        # Tern verifies what dkimpy signed (once, not timed for the table)
        _, cross, _ = run_rate("verify", recfile, domain, selector, py_dir, N, 1)
        if cross != N:
            fail("Tern verified %d of the %d messages dkimpy signed (%s)" % (cross, N, alg))

        p_sign, p_verify = statistics.median(p_sign_runs), statistics.median(p_verify_runs)
        for op, t, p, tr, pr in (("sign", t_sign, p_sign, t_sign_runs, p_sign_runs),
                                 ("verify", t_verify, p_verify, t_verify_runs, p_verify_runs)):
            log("rate: %s %s: tern runs %s, dkimpy runs %s" % (
                alg, op, ", ".join(fmt(x) for x in tr), ", ".join(fmt(x) for x in pr)))
            rows.append((alg, op, t, p))
            result("dkim_%s_%s_tern_msgs_per_s" % (alg, op), fmt(t))
            result("dkim_%s_%s_dkimpy_msgs_per_s" % (alg, op), fmt(p))
            result("dkim_%s_%s_ratio_tern_dkimpy" % (alg, op), "%.2f" % (t / p if p else 0))
    print("DKIM, %d messages of 20 KiB, one thread, median of %d run(s), messages/s:" % (N, RUNS))
    print("  %-8s %-7s %10s %10s %7s" % ("key", "op", "tern", "dkimpy", "ratio"))
    for alg, op, t, p in rows:
        print("  %-8s %-7s %10.1f %10.1f %7.2f" % ("RSA-2048" if alg == "rsa" else "Ed25519",
                                                   op, t, p, t / p if p else 0))
    print("  (each verified every message the other signed)")
    return {(alg, op): t for alg, op, t, _ in rows}


# --------------------------------------------------------- part 2: port 25
def txt(record):
    return " ".join('"%s"' % record[i:i + 255] for i in range(0, len(record), 255))


def has_dmarc():
    """Does this Tern know mailauth.dmarc?  (tern config check on a copy.)"""
    d = tempfile.mkdtemp(prefix="tern-bench-dmarc-probe-", dir=WORK)
    p = harness.run_tern(["init", d, "--port-offset", "1"])
    if p.returncode != 0:
        return False
    conf = os.path.join(d, "tern.conf")
    with open(conf) as f:
        text = harness.config_set(f.read(), "mailauth.dmarc", True)
    with open(conf, "w") as f:
        f.write(text)
    return harness.run_tern(["config", "check"], conf=conf).returncode == 0


def reply(f):
    """One SMTP reply (multiline too): its code."""
    while True:
        line = f.readline(4096)
        if not line:
            raise OSError("connection closed")
        if len(line) >= 4 and line[3:4] == b" ":
            return int(line[:3])
        if len(line) < 4 or line[3:4] != b"-":
            raise OSError("bad reply line %r" % line[:80])


def send_one(port, sender, data):
    """One message on its own connection; seconds from the end of data to
    the 250.  The whole message is written before the final ".", so the
    time measured is the server's end-of-data work (checks, commit)."""
    with socket.create_connection(("127.0.0.1", port), timeout=SMTP_TIMEOUT) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")

        def expect(code):
            c = reply(f)
            if c != code:
                fail("message from %s: reply %d, wanted %d" % (sender, c, code))
        expect(220)
        s.sendall(b"EHLO client.bench.test\r\n")
        expect(250)
        s.sendall(b"MAIL FROM:<%s>\r\n" % sender.encode())
        expect(250)
        s.sendall(b"RCPT TO:<%s>\r\n" % RCPT.encode())
        expect(250)
        s.sendall(b"DATA\r\n")
        expect(354)
        body = data.replace(b"\r\n.", b"\r\n..")
        s.sendall(body)
        t0 = time.perf_counter()
        s.sendall(b".\r\n")
        c = reply(f)
        t = time.perf_counter() - t0
        if c != 250:
            fail("message from %s: reply %d at end of data" % (sender, c))
        s.sendall(b"QUIT\r\n")
        reply(f)
    return t


def make_server(dns, name, on, dmarc, threads=None):
    s = harness.TernServer(name=name, spf=on, dkim=on)
    if dmarc:
        s.set("mailauth.dmarc", on)
    if threads:
        s.set("worker_threads", threads)
    s.add_domain("local.test")
    s.add_user(RCPT, PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=5, dnssec=False))
    s.start()
    return s


def stop(s):
    try:
        s.stop()
    finally:
        if not os.environ.get("BENCH_KEEP"):
            s.cleanup()


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def cpu_seconds(s):
    """User + system CPU time of the server's processes (master and
    worker, every thread of each), from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in [s.proc.pid] + list(s.worker_pids()):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])     # utime, stime
    return total / tick


def settle(s, quiet=1.5, limit=60):
    """Wait until server s used no CPU for quiet seconds: it indexes new
    mail for search in the background once deliveries stop, and that work
    must not land in a profile."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(s)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(s)
        if now == last:
            return
        last = now


def stored_count(s):
    return len(s.message_rows(RCPT))


def symbol_groups():
    """Which part of Tern each function name (global or static) belongs
    to: "checks" (src/mailauth/, src/smtp/receive-mailauth.c), "dns"
    (src/dns/), "shared" (src/lib/, src/mail/: helpers that the checks and
    everything else call) or "other"; a name defined in two groups is
    left out."""
    objdir = os.path.join(os.path.dirname(os.environ["TERN_BIN"]), "src")
    groups = {}
    for sub in sorted(os.listdir(objdir)):
        d = os.path.join(objdir, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not name.endswith(".o"):
                continue
            group = ("checks" if sub == "mailauth" or name == "receive-mailauth.o"
                     else "dns" if sub == "dns" else "shared" if sub in ("lib", "mail")
                     else "other")
            out = subprocess.run(["nm", "--defined-only", os.path.join(d, name)],
                                 capture_output=True, text=True).stdout
            for f in (l.split() for l in out.splitlines()):
                if len(f) == 3 and f[1] in "Tt":
                    groups.setdefault(f[2], set()).add(group)
    return {n: g.pop() for n, g in groups.items() if len(g) == 1}


def sample_owner(frames, groups):
    """The part of the server a stack sample's CPU time belongs to: the
    Tern function nearest the leaf that is not a shared helper decides
    (so libcrypto under DKIM counts for the checks, and the delivery that
    the checks' completion callback resumes counts for the rest);
    libunbound counts for DNS."""
    for f in frames:
        if len(f) < 2:
            continue
        if "libunbound" in f[-1]:
            return "dns"
        g = groups.get(f[1].split("+")[0])
        if g in ("checks", "dns", "other"):
            return g
    return "other"


def perf_share(s, run):
    """Share of the server's CPU samples spent in the inbound checks while
    run() loads it: `perf record` (cpu-clock, DWARF call graphs) on the
    worker process, every thread, each sample given to a part of the
    server by sample_owner().  Returns (checks, dns, samples), or None
    when perf is missing (run() is then not called) or could not record."""
    perf = shutil.which("perf")
    if perf is None:
        log("perf missing (apt-get install linux-perf): no profile")
        return None
    groups = symbol_groups()
    data = os.path.join(WORK, "perf-%s.data" % os.path.basename(s.dir))
    settle(s)
    rec = subprocess.Popen([perf, "record", "-q", "-e", "cpu-clock", "-F", "1999",
                            "--call-graph", "dwarf,16384", "-p", str(s.wait_worker()),
                            "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1)                       # let perf attach to every thread
    try:
        run()
    finally:
        rec.send_signal(signal.SIGINT)
        err = rec.communicate(timeout=120)[1]
    if not os.path.exists(data):
        log("perf record failed, no profile: %s" % err.decode(errors="replace")[-300:])
        return None
    out = subprocess.run([perf, "script", "-i", data, "-F", "ip,sym,dso"],
                         capture_output=True, text=True, timeout=600).stdout
    count = {"checks": 0, "dns": 0, "other": 0}
    for sample in out.split("\n\n"):
        frames = [l.split() for l in sample.strip().splitlines()]
        if frames:
            count[sample_owner(frames, groups)] += 1
    return count["checks"], count["dns"], sum(count.values())


def part_smtp(keys, dkim_rates):
    dmarc = has_dmarc()
    checks = "SPF+DKIM+DMARC" if dmarc else "SPF+DKIM"
    if not dmarc:
        log("this Tern has no mailauth.dmarc setting yet: measuring SPF+DKIM")
    records = []
    for i in range(M):
        records.append('s%d TXT "v=spf1 ip4:127.0.0.1 -all"' % i)
        records.append("rsa._domainkey.s%d TXT %s" % (i, txt(keys.record["rsa"])))
        records.append('_dmarc.s%d TXT "v=DMARC1; p=none"' % i)
    msgs = []
    for i in range(M):
        domain = "s%d.bench.test" % i
        m = make_message(10000 + i, domain)
        msgs.append(("alice@" + domain, dkimpy_sign(m, keys, "rsa", domain, "rsa") + m))
    with testdns.TestDNS() as dns:
        dns.zone("bench.test", records)
        dns.start()
        # One event loop: each loop has its own resolver cache, and the
        # kernel spreads connections over the loops; with two, a "warm"
        # message could meet the loop that has not seen its domain yet.
        # Both servers run side by side and take turns message by message,
        # so that the machine's other load falls on both alike.
        lat = {True: ([], []), False: ([], [])}
        for r in range(RUNS):
            servers = {}
            try:
                for on in (True, False):
                    servers[on] = make_server(dns, "bench-auth-%s" % ("on" if on else "off"),
                                              on, dmarc, threads=1)
                for idx in (0, 1):              # pass 1: cold cache, pass 2: warm
                    for i, (sender, data) in enumerate(msgs):
                        order = (True, False) if (i + r) % 2 == 0 else (False, True)
                        for on in order:
                            lat[on][idx].append(send_one(servers[on].port("smtp"), sender, data))
                for on, s in servers.items():
                    n = stored_count(s)
                    if n != 2 * M:
                        fail("%d of %d messages stored" % (n, 2 * M))
                if r == 0:
                    head = servers[True].messages(RCPT)[0].split(b"\r\n\r\n", 1)[0]
                    want = [b"spf=pass", b"dkim=pass"] + ([b"dmarc=pass"] if dmarc else [])
                    if not all(w in head for w in want):
                        fail("stored message lacks %s: %r" % (want, head[:600]))
            finally:
                for s in servers.values():
                    stop(s)
        print("Port 25, %s, %d messages of 20 KiB (one RSA-2048 signature each) per pass,"
              " %d run(s), one loop thread; end of data -> 250, ms:" % (checks, M, RUNS))
        print("  %-32s %8s %8s %9s %9s" % ("", "median", "p99", "+median", "+p99"))
        for label, idx in (("cold cache (new domains)", 0), ("warm cache (same domains)", 1)):
            on, off = lat[True][idx], lat[False][idx]
            mo, mf = statistics.median(on) * 1e3, statistics.median(off) * 1e3
            po, pf = pct(on, 99) * 1e3, pct(off, 99) * 1e3
            print("  %-32s %8.2f %8.2f" % ("off, " + label.split(" (")[0], mf, pf))
            print("  %-32s %8.2f %8.2f %+9.2f %+9.2f" % ("on,  " + label, mo, po, mo - mf, po - pf))
            tag = "cold" if idx == 0 else "warm"
            result("smtp_%s_off_median_ms" % tag, "%.2f" % mf)
            result("smtp_%s_on_median_ms" % tag, "%.2f" % mo)
            result("smtp_%s_added_median_ms" % tag, "%.2f" % (mo - mf))
            result("smtp_%s_off_p99_ms" % tag, "%.2f" % pf)
            result("smtp_%s_on_p99_ms" % tag, "%.2f" % po)
            result("smtp_%s_added_p99_ms" % tag, "%.2f" % (po - pf))

        # throughput: smtp-source, one signed message T times, S sessions
        if not os.access(SOURCE, os.X_OK):
            log("%s missing (apt-get install postfix): no throughput figures" % SOURCE)
            return
        sender, data = msgs[0]
        msgfile = os.path.join(WORK, "load.eml")
        with open(msgfile, "wb") as f:
            # smtp-source -F sends each line of the file with CRLF added
            f.write(data.replace(b"\r\n", b"\n"))
        # both servers up at once, runs alternating on/off (idle one waits)
        runs = {True: [], False: []}
        cpu = {True: [], False: []}
        servers = {}
        try:
            for on in (True, False):
                servers[on] = make_server(dns, "bench-load-%s" % ("on" if on else "off"), on, dmarc)
                send_one(servers[on].port("smtp"), sender, data)   # warms one loop's cache

            def load(s):
                base = stored_count(s)
                p = subprocess.run([SOURCE, "-s", str(S), "-m", str(T), "-F", msgfile,
                                    "-M", "client.bench.test", "-f", sender, "-t", RCPT,
                                    "127.0.0.1:%d" % s.port("smtp")],
                                   capture_output=True, text=True, timeout=LOAD_TIMEOUT)
                if p.returncode != 0:
                    fail("smtp-source: %s %s" % (p.stdout[-300:], p.stderr[-300:]))
                n = stored_count(s) - base
                if n != T:
                    fail("smtp-source run: %d of %d messages stored" % (n, T))

            for r in range(RUNS):
                for on in ((True, False) if r % 2 == 0 else (False, True)):
                    s = servers[on]
                    c0 = cpu_seconds(s)
                    t0 = time.perf_counter()
                    load(s)
                    t = time.perf_counter() - t0
                    cpu[on].append((cpu_seconds(s) - c0) / T)
                    runs[on].append(T / t)
            # one more run, profiled: the share within one server and one
            # run, which the machine's other load does not skew
            profile = perf_share(servers[True], lambda: load(servers[True]))
            profile_off = perf_share(servers[False], lambda: load(servers[False]))
            last = servers[True].messages(RCPT)[-1].split(b"\r\n\r\n", 1)[0]
            if b"dkim=pass" not in last or b"spf=pass" not in last:
                fail("smtp-source message not verified: %r" % last[:600])
        finally:
            for s in servers.values():
                stop(s)
        rates, cpus = {}, {}
        for on in (True, False):
            log("load: mailauth %s: runs %s msg/s, server CPU %s ms/msg" % (
                "on" if on else "off", ", ".join(fmt(x) for x in runs[on]),
                ", ".join("%.3f" % (x * 1e3) for x in cpu[on])))
            rates[on] = statistics.median(runs[on])
            cpus[on] = statistics.median(cpu[on])
    r_on, r_off = rates[True], rates[False]
    share = 1 - r_on / r_off if r_off else 0
    c_on, c_off = cpus[True], cpus[False]
    cpu_share = 1 - c_off / c_on if c_on else 0
    ncpu = os.cpu_count() or 1
    # what DKIM verification alone costs (part 1, RSA-2048, one thread)
    dkim_ms = 1e3 / dkim_rates[("rsa", "verify")]
    print("Throughput, smtp-source, %d messages of 20 KiB over %d sessions, median of %d run(s),"
          " default settings (%d loop threads):" % (T, S, RUNS, ncpu))
    print("  %-14s %10s %16s" % ("", "msg/s", "server CPU ms/msg"))
    print("  %-14s %10.1f %16.3f" % ("mailauth off", r_off, c_off * 1e3))
    print("  %-14s %10.1f %16.3f   (%s, warm cache)" % ("mailauth on", r_on, c_on * 1e3, checks))
    print("  share of inbound time spent on the checks (1 - rate_on/rate_off): %.1f%%"
          % (share * 100))
    print("  share of the server's CPU per message spent on them (1 - cpu_off/cpu_on): %.1f%%"
          % (cpu_share * 100))
    print("  target: under 10%%; DKIM verification alone (part 1): %.3f ms/msg = %.1f%% of"
          " the CPU per message with the checks on" % (dkim_ms, dkim_ms / (c_on * 1e3) * 100
                                                      if c_on else 0))
    if profile and profile_off:
        p_checks, p_dns, p_total = profile
        print("  profile of one more run with the checks on (perf, %d samples of the server):"
              % p_total)
        print("    in the checks (SPF, DKIM, DMARC, ARC code and what it calls): %.1f%%"
              % (100.0 * p_checks / max(p_total, 1)))
        print("    in their DNS lookups (resolver, libunbound): %.1f%%"
              % (100.0 * p_dns / max(p_total, 1)))
        print("    together: %.1f%% of the server's CPU (target: under 10%%)"
              % (100.0 * (p_checks + p_dns) / max(p_total, 1)))
        print("    the same run with the checks off: %d samples (%.1f%% fewer)"
              % (profile_off[2], 100.0 * (1 - profile_off[2] / max(p_total, 1))))
        result("smtp_load_profile_off_samples", profile_off[2])
        result("smtp_load_profile_samples", p_total)
        result("smtp_load_profile_checks_percent", "%.1f" % (100.0 * p_checks / max(p_total, 1)))
        result("smtp_load_profile_dns_percent", "%.1f" % (100.0 * p_dns / max(p_total, 1)))
        result("smtp_load_profile_mailauth_percent",
               "%.1f" % (100.0 * (p_checks + p_dns) / max(p_total, 1)))
    result("smtp_load_off_msgs_per_s", fmt(r_off))
    result("smtp_load_on_msgs_per_s", fmt(r_on))
    result("smtp_load_off_cpu_ms_per_msg", "%.3f" % (c_off * 1e3))
    result("smtp_load_on_cpu_ms_per_msg", "%.3f" % (c_on * 1e3))
    result("smtp_load_mailauth_share_percent", "%.1f" % (share * 100))
    result("smtp_load_mailauth_cpu_share_percent", "%.1f" % (cpu_share * 100))
    result("mailauth_checks", checks.replace("+", ","))


def main():
    # run.sh's timeout sends SIGTERM: leave through the finally blocks and
    # context managers, which stop the servers and the test DNS
    signal.signal(signal.SIGTERM, lambda *_: fail("stopped by SIGTERM (time limit)"))
    try:
        keys = Keys()
        rates = part_rate(keys)
        if os.environ.get("BENCH_PART") != "rate":
            part_smtp(keys, rates)
        print("\n".join(OUT))
    finally:
        if os.environ.get("BENCH_KEEP"):
            log("kept " + WORK)
        else:
            shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
