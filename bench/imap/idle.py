"""IMAP IDLE measurements (bench/imap/run.sh runs this after the workload;
`--quick` uses small numbers):

1. push latency (Tern): an IMAP session IDLEs on INBOX over TLS; a message
   is sent by SMTP; the time from the start of that SMTP transaction (an
   upper bound of "from the 250") to the untagged EXISTS is measured N
   times, and the median and worst are printed (target: under 100 ms);
2. memory per idle TLS connection, for Tern and for a private Dovecot
   with imap-hibernate (bench/imap/dovecot.py; the same self-signed
   certificate, the same {SSHA512} hash for the same user): C connections
   log in over IMAPS from addresses spread over 127.0.0.0/8, SELECT INBOX
   and IDLE.  The memory of ALL the server's processes (Tern: master and
   worker; Dovecot: master, imap-login, imap, imap-hibernate, auth, anvil,
   log, config...) is read before and after, and the growth divided by C
   is printed, as RSS (the target's measure: at most 40 KiB) and as PSS
   (shared pages divided among the processes sharing them).  Dovecot is
   measured once its imap processes have handed every connection to
   imap-hibernate.  C = BENCH_IDLE_CONNECTIONS (default 2000; --quick 50);
   the file limit is raised for the client and the servers.
Prints idle_push_ms_median=, idle_push_ms_max=, tern_idle_conn_kib=,
dovecot_idle_conn_kib=, ratio_idle_conn_dovecot_tern= (and the PSS lines).
Exit 1 when a connection of either server fails."""
import base64
import hashlib
import os
import resource
import select
import shutil
import smtplib
import socket
import ssl
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True     # no __pycache__ in bench/imap
import tern as tern_harness  # noqa: E402
import dovecot as dv  # noqa: E402

USER, PASSWORD = "idle@bench.test", "idle-Secret-1"
HIBERNATE_AFTER = "2s"       # imap_hibernate_timeout of the private Dovecot


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def read_until(sock, token, timeout=10):
    buf = b""
    end = time.monotonic() + timeout
    while token not in buf:
        if time.monotonic() > end:
            raise TimeoutError("waiting for %r, got %r" % (token, buf[-200:]))
        p = select.poll()
        p.register(sock, select.POLLIN)
        if sock.pending() or p.poll(max(0.0, end - time.monotonic()) * 1000):
            d = sock.recv(65536)
            if not d:
                raise ConnectionError("closed while waiting for %r" % token)
            buf += d
    return buf


def idle_session(port, source="127.0.0.1", ctx=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30,
                                   source_address=(source, 0))
    s = (ctx or tls_ctx()).wrap_socket(raw)
    read_until(s, b"\r\n")
    s.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), PASSWORD.encode()))
    if b"a OK" not in read_until(s, b"a "):
        raise RuntimeError("LOGIN refused from %s" % source)
    s.sendall(b"b SELECT INBOX\r\nc IDLE\r\n")
    read_until(s, b"+ ", 30)
    return s


def push_latency(srv, rounds):
    s = idle_session(srv.port("imaps"))
    smtp = smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30)
    samples = []
    for i in range(rounds):
        # from the start of the SMTP transaction: an upper bound of the
        # time from the 250 (the EXISTS often arrives before the 250 does)
        t0 = time.perf_counter()
        smtp.sendmail("load@remote.test", [USER], "Subject: idle %d\r\n\r\nx\r\n" % i)
        read_until(s, b"EXISTS")
        samples.append((time.perf_counter() - t0) * 1000)
    smtp.quit()
    s.close()
    return samples


def add_cheap_user(srv):
    """The user gets a salted SHA-512 ({SSHA512}, imported as from
    Dovecot) instead of yescrypt: this measures idle sessions, and thousands
    of deliberately slow password checks would take most of the run.
    Dovecot gets the same hash string."""
    salt = os.urandom(8)
    digest = hashlib.sha512(PASSWORD.encode() + salt).digest()
    hashed = "{SSHA512}" + base64.b64encode(digest + salt).decode()
    path = os.path.join(srv.dir, "passwd")
    with open(path, "w") as f:
        f.write("%s:%s\n" % (USER, hashed))
    out = srv.tern("user", "import-dovecot", path)
    if out.returncode != 0:
        raise RuntimeError("import-dovecot: %s" % (out.stdout + out.stderr))
    return hashed


def source(i):
    """The i-th client address, spread over 127.0.0.0/8."""
    return "127.%d.%d.%d" % (1 + i // 62500 % 250, i // 250 % 250, 1 + i % 250)


def open_idle(port, count):
    ctx = tls_ctx()
    return [idle_session(port, source(i), ctx) for i in range(count)]


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def tern_memory(srv, count):
    """(RSS KiB, PSS KiB) growth per idle TLS connection of Tern."""
    srv.wait_worker()
    pids = dv.tree(srv.pid)
    # one settled connection first, so one-off allocations are not counted
    warm = idle_session(srv.port("imaps"))
    time.sleep(0.5)
    before = dv.memory(pids)
    by_name = dv.memory_by_name(pids)
    socks = []
    try:
        socks = open_idle(srv.port("imaps"), count)
        time.sleep(1.0)
        after = dv.memory(dv.tree(srv.pid))
        print("tern: RSS growth per connection by process (KiB): %s"
              % dv.growth(by_name, dv.memory_by_name(dv.tree(srv.pid)), count))
    finally:
        close_all(socks + [warm])
    return (after[0] - before[0]) / count, (after[1] - before[1]) / count


def hibernated(dc, limit):
    """Wait until no imap process is left (each IDLEing connection has
    moved to imap-hibernate); returns how many are left."""
    deadline = time.monotonic() + limit
    while True:
        left = sum(1 for p in dc.pids() if dv.comm(p) == "imap")
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.25)


INOTIFY = "/proc/sys/fs/inotify/max_user_instances"


def raise_inotify(count):
    """Dovecot hands each IDLEing connection's inotify instance to
    imap-hibernate, and every mail process runs as the same uid (nobody):
    without one instance per connection it cannot watch the mailbox, and
    cannot hibernate.  Returns the old limit to restore, or None."""
    try:
        with open(INOTIFY) as f:
            old = int(f.read())
        if old >= count + 200:
            return None
        with open(INOTIFY, "w") as f:
            f.write("%d\n" % (count + 200))
        return old
    except (OSError, ValueError):
        return None


def restore_inotify(old):
    if old is not None:
        try:
            with open(INOTIFY, "w") as f:
                f.write("%d\n" % old)
        except OSError:
            pass


def dovecot_memory(d, srv, hashed, count):
    """(RSS KiB, PSS KiB) growth per idle TLS connection of a private
    Dovecot with imap-hibernate, and the imap processes still running."""
    dc = dv.Dovecot(d)
    old_inotify = raise_inotify(count)
    try:
        dc.passwd([(USER, hashed)])
        dc.maildir(USER)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copyfile(os.path.join(srv.dir, "tls", "cert.pem"), cert)
        shutil.copyfile(os.path.join(srv.dir, "tls", "key.pem"), key)
        os.chmod(key, 0o600)
        dc.write(count, tls=(cert, key), hibernate=HIBERNATE_AFTER)
        dc.start()
        wait = float(HIBERNATE_AFTER.rstrip("s")) + 10
        warm = idle_session(dc.port_tls)
        if hibernated(dc, wait):
            raise RuntimeError("dovecot: the first connection was not hibernated;"
                               " see %s/dovecot.log" % d)
        time.sleep(0.5)
        before = dv.memory(dc.pids())
        by_name = dv.memory_by_name(dc.pids())
        socks = []
        try:
            socks = open_idle(dc.port_tls, count)
            left = hibernated(dc, wait + count / 100)
            time.sleep(1.0)
            after = dv.memory(dc.pids())
            print("dovecot: RSS growth per connection by process (KiB): %s"
                  % dv.growth(by_name, dv.memory_by_name(dc.pids()), count))
            procs = {}
            for p in dc.pids():
                procs[dv.comm(p)] = procs.get(dv.comm(p), 0) + 1
        finally:
            close_all(socks + [warm])
        for w in dc.log_warnings()[:5]:
            print("dovecot log: %s" % w)
        print("dovecot processes with %d idle connections: %s" % (
            count + 1, ", ".join("%s %d" % kv for kv in sorted(procs.items()))))
        return (after[0] - before[0]) / count, (after[1] - before[1]) / count, left
    finally:
        dc.stop()
        restore_inotify(old_inotify)


def main():
    quick = "--quick" in sys.argv
    rounds = 5 if quick else 50
    conns = 50 if quick else int(os.environ.get("BENCH_IDLE_CONNECTIONS", "2000"))
    # client sockets here, and the servers' (they inherit the limit)
    need = 3 * conns + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    systems = os.environ.get("BENCH_ONLY", "tern dovecot").split()
    why = dv.available()
    if "dovecot" in systems and why:
        print("dovecot: skipped (%s)" % why)
        systems.remove("dovecot")
    srv = tern_harness.TernServer(name="bench-idle", config={
        "imap.connections_per_user": 0, "limits.connections_per_ip": 100000,
        "limits.connections": 100000})
    tmp = tempfile.mkdtemp(prefix="tern-bench-idle-")
    os.chmod(tmp, 0o755)
    res = {}
    failed = False
    try:
        srv.add_domain("bench.test")
        hashed = add_cheap_user(srv)
        srv.start()
        samples = push_latency(srv, rounds)
        print("idle push latency over %d deliveries: median %.1f ms, max %.1f ms"
              % (len(samples), statistics.median(samples), max(samples)))
        if "tern" in systems:
            t = time.perf_counter()
            res["tern"] = tern_memory(srv, conns)
            print("tern: %d idle TLS connections opened and measured in %.1f s"
                  % (conns, time.perf_counter() - t))
        srv.stop()
        if "dovecot" in systems:
            t = time.perf_counter()
            rss, pss, left = dovecot_memory(os.path.join(tmp, "dv"), srv, hashed, conns)
            res["dovecot"] = (rss, pss)
            print("dovecot: %d idle TLS connections opened and measured in %.1f s%s"
                  % (conns, time.perf_counter() - t,
                     "" if not left else " (%d imap processes not hibernated)" % left))
            if left > conns // 100:
                raise RuntimeError("dovecot: %d of %d connections were not hibernated"
                                   % (left, conns))
    except Exception as e:
        print("idle: %s" % e)
        failed = True
    finally:
        srv.stop()
        if os.environ.get("BENCH_KEEP"):
            print("kept %s %s" % (srv.dir, tmp))
        else:
            srv.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
    for name, (rss, pss) in res.items():
        print("memory per idle TLS connection, %s (%d connections): RSS %.1f KiB, PSS %.1f KiB"
              % (name, conns, rss, pss))
    if failed:
        return 1
    print("idle_push_ms_median=%.1f" % statistics.median(samples))
    print("idle_push_ms_max=%.1f" % max(samples))
    for name, (rss, pss) in res.items():
        print("%s_idle_conn_kib=%.1f" % (name, rss))
        print("%s_idle_conn_pss_kib=%.1f" % (name, pss))
    if "tern" in res and "dovecot" in res and res["tern"][0] > 0:
        print("ratio_idle_conn_dovecot_tern=%.2f" % (res["dovecot"][0] / res["tern"][0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
