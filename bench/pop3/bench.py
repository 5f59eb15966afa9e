"""POP3 download benchmark driver (see run.sh for what and why).

Sets up Tern (through tests/harness/tern.py) and a private Dovecot with the
same messages, then runs the C load generator (load.c: C concurrent
clients in one process; each logs in with USER/PASS, runs STAT and LIST,
then pipelines RETR and DELE for every message and QUIT, checking every
message) against each server in turn, BENCH_RUNS times on refilled
mailboxes.  Prints for each run the whole-run rate (first connect to last
QUIT reply), the login phase (first connect to the last PASS +OK) and the
download rate (messages / the median over clients of the time from a
client's own PASS +OK to its own QUIT +OK), then the medians and ratios."""
import os
import pwd
import shutil
import smtplib
import statistics
import socket
import subprocess
import sys
import tempfile
import time
import concurrent.futures

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
import tern as tern_harness  # noqa: E402

PASSWORD = "bench-Secret-1"
LOAD = os.environ.get("BENCH_LOAD", os.path.join(os.path.dirname(os.path.abspath(__file__)), "load"))


def message(u, i, size):
    head = ("From: load@remote.test\r\nTo: u%d@bench.test\r\nSubject: bench %d/%d\r\n"
            "Message-ID: <%d.%d@remote.test>\r\n\r\n" % (u, u, i, u, i))
    line = "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?\r\n"
    body = (line * (size // len(line) + 1))[:size - len(head) - 2] + "\r\n"
    return (head + body).encode()


def fill_tern(srv, users, per_user, size):
    def worker(u):
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=120) as s:
            for i in range(per_user):
                s.sendmail("load@remote.test", ["u%d@bench.test" % u], message(u, i, size))
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        for f in [ex.submit(worker, u) for u in range(users)]:
            f.result()


def run_load(port, users, per_user):
    """One run of the C load generator (load.c) against port; returns
    (ok, messages, wall seconds, client CPU seconds, machine busy CPU
    seconds during the run, the load generator's key=value fields)."""
    busy0 = busy_cpu()
    p = subprocess.run([LOAD, str(port), str(users), "u", "@bench.test", PASSWORD,
                        str(per_user), "600"], capture_output=True, text=True)
    busy = busy_cpu() - busy0
    sys.stderr.write(p.stderr)
    kv = dict(f.split("=", 1) for f in p.stdout.split())
    if "wall" not in kv:
        raise RuntimeError("load generator failed: %r %r" % (p.stdout, p.stderr))
    return (p.returncode == 0 and kv["ok"] == "1", int(kv["messages"]), float(kv["wall"]),
            float(kv["client_cpu"]), busy, kv)


def settle(pids, quiet=1.5, limit=120):
    """Wait until the processes pids (with their threads) used no CPU for
    quiet seconds: Tern indexes new mail for search in the background once
    deliveries stop, which would otherwise overlap the POP3 run."""
    def cpu():
        t = 0
        for pid in pids:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    v = f.read().rsplit(")", 1)[1].split()
                t += int(v[11]) + int(v[12])
            except OSError:
                pass
        return t
    deadline = time.monotonic() + limit
    last = cpu()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu()
        if now == last:
            return
        last = now


def busy_cpu():
    """Seconds of CPU the whole machine spent not idle (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


DOVECOT_CONF = """
protocols = pop3
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
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
# Dovecot's documented high-performance login mode: long-lived login
# processes (one per core) instead of one process per connection
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 2
}}
# pop3 processes forked ahead of the clients (one per session, the default)
service pop3 {{
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


def fill_dovecot(d, users, run):
    """(Re)fill each Maildir's cur/ with the copies of Tern's messages."""
    nobody = pwd.getpwnam("nobody")
    for u in range(users):
        addr = "u%d@bench.test" % u
        cur = os.path.join(d, "home", addr, "Maildir", "cur")
        for name in sorted(os.listdir(os.path.join(d, "src", addr))):
            i = int(name)
            shutil.copyfile(os.path.join(d, "src", addr, name),
                            os.path.join(cur, "%d.M%dP%d.bench:2," % (1700000000 + i, i, run + 1)))
    subprocess.run(["chown", "-R", "%d:%d" % (nobody.pw_uid, nobody.pw_gid), os.path.join(d, "home")],
                   check=True)


def start_dovecot(d, srv, users):
    """A private Dovecot with a copy of Tern's stored messages."""
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    os.makedirs(d)
    # the same credentials as Tern: its stored crypt(3) hashes (yescrypt),
    # which Dovecot's CRYPT scheme verifies through the same libcrypt
    with open(os.path.join(d, "passwd"), "w") as f:
        for addr, hashed in srv.query("SELECT address, password_hash FROM users ORDER BY id"):
            if hashed.startswith("$"):
                f.write("%s:{CRYPT}%s\n" % (addr, hashed))
            else:
                f.write("%s:{PLAIN}%s\n" % (addr, PASSWORD))
    for u in range(users):
        addr = "u%d@bench.test" % u
        md = os.path.join(d, "home", addr, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        os.makedirs(os.path.join(d, "src", addr))
        for i, (_uid, _size, path) in enumerate(srv.message_rows(addr)):
            shutil.copyfile(path, os.path.join(d, "src", addr, "%06d" % i))
    fill_dovecot(d, users, 0)
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(d=d, port=port, uid=nobody.pw_uid, gid=nobody.pw_gid,
                                    clients=users))
    subprocess.run(["/usr/sbin/dovecot", "-c", conf], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"+OK"):
                    return conf, port
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("dovecot did not start; see %s/dovecot.log" % d)


def main():
    users = int(os.environ.get("BENCH_CLIENTS", "20"))
    per_user = int(os.environ.get("BENCH_MESSAGES", "200"))
    size = int(os.environ.get("BENCH_SIZE", str(20 * 1024)))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    systems = os.environ.get("BENCH_ONLY", "tern dovecot").split()
    if os.geteuid() != 0 and "dovecot" in systems:
        print("not root: skipping the private Dovecot")
        systems.remove("dovecot")
    srv = tern_harness.TernServer(name="bench-pop3",
                                  config={"pop3.plaintext_auth_loopback": True,
                                          "limits.connections_per_ip": 1000})
    tmp = tempfile.mkdtemp(prefix="tern-bench-pop3-")
    os.chmod(tmp, 0o755)
    conf = None
    failed = False
    results = {}
    dl_results = {}
    login_results = {}
    try:
        srv.add_domain("bench.test")
        for u in range(users):
            srv.add_user("u%d@bench.test" % u, PASSWORD)
        srv.start()
        for run in range(runs):
            t0 = time.time()
            fill_tern(srv, users, per_user, size)
            if run == 0:
                print("filled %d mailboxes with %d messages of %d bytes in %.1f s"
                      % (users, per_user, size, time.time() - t0))
            if "dovecot" in systems:
                if run == 0:
                    conf, dport = start_dovecot(os.path.join(tmp, "dv"), srv, users)
                else:
                    fill_dovecot(os.path.join(tmp, "dv"), users, run)
            settle([srv.pid] + srv.worker_pids())
            # the two servers take turns, run after run, on the same data
            for name in systems:
                port = srv.port("pop3") if name == "tern" else dport
                ok, total, wall, ccpu, busy, kv = run_load(port, users, per_user)
                note = ""
                if name == "tern":
                    left = srv.query("SELECT count(*) FROM messages")[0][0]
                    if left != 0:
                        ok = False
                        note = "  (%d messages left in the store)" % left
                rate = total / wall if wall > 0 else 0.0
                dl_median = float(kv["dl_median"])
                dl_rate = total / dl_median if dl_median > 0 else 0.0
                results.setdefault(name, []).append(rate)
                dl_results.setdefault(name, []).append(dl_rate)
                login_results.setdefault(name, []).append(float(kv["login"]))
                print("run %d %-8s %d messages in %.3f s = %.0f msgs/s; logins done at %.3f s;"
                      " download per client median %.3f s (min %.3f, max %.3f) = %.0f msgs/s;"
                      " QUIT reply median %.1f ms (max %.1f);"
                      " CPU: machine %.2f s, client %.2f s%s%s"
                      % (run + 1, name + ":", total, wall, rate, float(kv["login"]), dl_median,
                         float(kv["dl_min"]), float(kv["dl_max"]), dl_rate,
                         1000 * float(kv["quit_median"]), 1000 * float(kv["quit_max"]), busy, ccpu,
                         "" if ok else "  (INCOMPLETE)", note))
                failed |= not ok
    finally:
        if conf:
            subprocess.run(["/usr/sbin/dovecot", "-c", conf, "stop"], capture_output=True)
        srv.stop()
        if not os.environ.get("BENCH_KEEP"):
            srv.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", srv.dir, tmp)
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in med.items():
        print("%s_msgs_per_s=%.0f" % (k, v))
    if "tern" in med and "dovecot" in med and med["dovecot"] > 0:
        print("ratio_tern_dovecot=%.2f" % (med["tern"] / med["dovecot"]))
    dl_med = {k: statistics.median(v) for k, v in dl_results.items()}
    for k, v in login_results.items():
        print("%s_login_s=%.3f" % (k, statistics.median(v)))
    for k, v in dl_med.items():
        print("%s_dl_msgs_per_s=%.0f" % (k, v))
    if "tern" in dl_med and "dovecot" in dl_med and dl_med["dovecot"] > 0:
        print("ratio_dl_tern_dovecot=%.2f" % (dl_med["tern"] / dl_med["dovecot"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
