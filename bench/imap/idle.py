"""IMAP IDLE measurements for Tern (bench/imap/run.sh runs this after the
workload; `--quick` uses small numbers):

1. push latency: an IMAP session IDLEs on INBOX over TLS; a message is sent
   by SMTP; the time from the start of that SMTP transaction (an upper
   bound of "from the 250") to the untagged EXISTS is measured N times, and
   the median and worst are printed (target: under 100 ms);
2. memory per idle TLS connection: C connections log in over IMAPS, select
   INBOX and IDLE; the worker's RSS before and after, divided by C, is
   printed (target: at most 40 KiB).  Client addresses are spread over
   127.0.0.0/8 so no per-address limit applies.  Default 10 000
   connections (BENCH_IDLE_CONNECTIONS); needs `ulimit -n` above that.
Prints idle_push_ms_median=, idle_push_ms_max=, idle_conn_kib=."""
import base64
import hashlib
import os
import resource
import select
import smtplib
import socket
import ssl
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
import tern as tern_harness  # noqa: E402

USER, PASSWORD = "idle@bench.test", "idle-Secret-1"


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


def idle_session(port, source="127.0.0.1"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30,
                                   source_address=(source, 0))
    s = tls_ctx().wrap_socket(raw)
    read_until(s, b"\r\n")
    s.sendall(b'a LOGIN "%s" "%s"\r\nb SELECT INBOX\r\nc IDLE\r\n' %
              (USER.encode(), PASSWORD.encode()))
    read_until(s, b"+ ")
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
    of deliberately slow password checks would take most of the run."""
    salt = os.urandom(8)
    digest = hashlib.sha512(PASSWORD.encode() + salt).digest()
    line = "%s:{SSHA512}%s\n" % (USER, base64.b64encode(digest + salt).decode())
    path = os.path.join(srv.dir, "passwd")
    with open(path, "w") as f:
        f.write(line)
    out = srv.tern("user", "import-dovecot", path)
    if out.returncode != 0:
        raise RuntimeError("import-dovecot: %s" % (out.stdout + out.stderr))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_memory(srv, count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    worker = srv.wait_worker()
    # one settled connection first, so one-off allocations are not counted
    warm = idle_session(srv.port("imaps"))
    time.sleep(0.5)
    before = rss_kib(worker)
    socks = []
    for i in range(count):
        src = "127.%d.%d.%d" % (1 + i // 62500 % 250, i // 250 % 250, 1 + i % 250)
        socks.append(idle_session(srv.port("imaps"), src))
    time.sleep(1.0)
    after = rss_kib(worker)
    for s in socks:
        s.close()
    warm.close()
    return (after - before) / count


def main():
    quick = "--quick" in sys.argv
    rounds, conns = (5, 50) if quick else (50, int(os.environ.get("BENCH_IDLE_CONNECTIONS", "10000")))
    srv = tern_harness.TernServer(name="bench-idle", config={
        "imap.connections_per_user": 0, "limits.connections_per_ip": 100000,
        "limits.connections": 100000})
    try:
        srv.add_domain("bench.test")
        add_cheap_user(srv)
        srv.start()
        samples = push_latency(srv, rounds)
        per_conn = idle_memory(srv, conns)
    finally:
        srv.stop()
        srv.cleanup()
    print("idle push latency over %d deliveries: median %.1f ms, max %.1f ms"
          % (len(samples), statistics.median(samples), max(samples)))
    print("memory per idle TLS connection (%d connections): %.1f KiB" % (conns, per_conn))
    print("idle_push_ms_median=%.1f" % statistics.median(samples))
    print("idle_push_ms_max=%.1f" % max(samples))
    print("idle_conn_kib=%.1f" % per_conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
