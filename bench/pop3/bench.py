"""POP3 download benchmark driver (see run.sh for what and why).

Sets up Tern (through tests/harness/tern.py) and a private Dovecot with the
same messages, then runs C concurrent clients per server; each logs in with
USER/PASS, runs STAT and LIST, then pipelines RETR and DELE for every
message and QUIT, and counts the messages it received.  Prints messages
per second for each server and the ratio."""
import multiprocessing
import os
import pwd
import shutil
import smtplib
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


def client(args):
    port, user, expect, start_at = args
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    f = s.makefile("rb")

    def line():
        ln = f.readline()
        if not ln.startswith(b"+OK"):
            raise RuntimeError("%s: %r" % (user, ln))
        return ln
    line()
    s.sendall(b"USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\n" % (user.encode(), PASSWORD.encode()))
    line()
    line()
    n = int(line().split()[1])
    line()
    while f.readline() != b".\r\n":
        pass
    cmds = b"".join(b"RETR %d\r\nDELE %d\r\n" % (i, i) for i in range(1, n + 1)) + b"QUIT\r\n"
    s.sendall(cmds)
    data = f.read()            # until the server closes after QUIT
    s.close()
    got = data.count(b"\r\n.\r\n")
    ok = got == n == expect and data.rstrip().split(b"\r\n")[-1].startswith(b"+OK")
    return ok, n, got, time.monotonic() - t0


def run_clients(port, users, per_user, prefix_fmt):
    start_at = time.time() + 0.5
    args = [(port, prefix_fmt % u, per_user, start_at) for u in range(users)]
    with multiprocessing.Pool(users) as pool:
        t0 = time.time()
        res = pool.map(client, args)
        wall = time.time() - max(t0, start_at)
    ok = all(r[0] for r in res)
    total = sum(r[2] for r in res)
    return ok, total, wall, res


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
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service pop3 {{
  process_limit = 1024
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_dovecot(d, srv, users):
    """A private Dovecot with a copy of Tern's stored messages."""
    nobody = pwd.getpwnam("nobody")
    port = free_port()
    os.makedirs(d)
    with open(os.path.join(d, "passwd"), "w") as f:
        for u in range(users):
            f.write("u%d@bench.test:{PLAIN}%s\n" % (u, PASSWORD))
    for u in range(users):
        addr = "u%d@bench.test" % u
        md = os.path.join(d, "home", addr, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        for i, (_uid, _size, path) in enumerate(srv.message_rows(addr)):
            shutil.copyfile(path, os.path.join(md, "cur", "%d.M%dP1.bench:2," % (1700000000 + i, i)))
    subprocess.run(["chown", "-R", "%d:%d" % (nobody.pw_uid, nobody.pw_gid), os.path.join(d, "home")],
                   check=True)
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(DOVECOT_CONF.format(d=d, port=port, uid=nobody.pw_uid, gid=nobody.pw_gid))
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
    try:
        srv.add_domain("bench.test")
        for u in range(users):
            srv.add_user("u%d@bench.test" % u, PASSWORD)
        srv.start()
        t0 = time.time()
        fill_tern(srv, users, per_user, size)
        print("filled %d mailboxes with %d messages of %d bytes in %.1f s"
              % (users, per_user, size, time.time() - t0))
        if "dovecot" in systems:
            conf, dport = start_dovecot(os.path.join(tmp, "dv"), srv, users)
        if "tern" in systems:
            ok, total, wall, _ = run_clients(srv.port("pop3"), users, per_user, "u%d@bench.test")
            left = srv.query("SELECT count(*) FROM messages")[0][0]
            results["tern"] = total / wall
            print("tern:    %d messages in %.2f s = %.0f msgs/s%s" % (
                total, wall, total / wall, "" if ok and left == 0 else "  (INCOMPLETE)"))
            failed |= not ok or left != 0
        if "dovecot" in systems:
            ok, total, wall, _ = run_clients(dport, users, per_user, "u%d@bench.test")
            results["dovecot"] = total / wall
            print("dovecot: %d messages in %.2f s = %.0f msgs/s%s" % (
                total, wall, total / wall, "" if ok else "  (INCOMPLETE)"))
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
    for k, v in results.items():
        print("%s_msgs_per_s=%.0f" % (k, v))
    if "tern" in results and "dovecot" in results:
        print("ratio_tern_dovecot=%.2f" % (results["tern"] / results["dovecot"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
