"""Operations: reload and stop signals, privilege separation, the fail2ban
filter, PROXY protocol, per-IP connection limit, quota, size limit and the
authentication-failure limit."""
import base64
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid

import pytest

from conftest import finish, populate
from smtpc import SmtpConn, ServerClosed, send_message
import tern as th

REPO = th.REPO
PROXY_CLIENT_V1 = "127.10.20.30"   # claimed client addresses: loopback, never contacted
PROXY_CLIENT_V2 = "127.10.20.31"
PROXY_SPOOF = "127.10.20.32"


@pytest.fixture(scope="module")
def ops():
    """Server with PROXY trusted from 127.0.0.2, a 20000-byte size limit and
    a user with a 10K quota."""
    srv = th.TernServer(name="ops", config={
        "smtp.proxy_trusted": ["127.0.0.2"],
        "limits.message_size": 20000,
    })
    try:
        populate(srv)
        srv.add_user("q@example.test", "quota-Secret-5", quota="10K")
        srv.start()
    except Exception:
        srv.cleanup()
        raise
    yield srv
    finish(srv)


def tag():
    return uuid.uuid4().hex[:12]


def deliver_on(c, rcpt, t, sender="x@remote.test"):
    c.expect("MAIL FROM:<%s>" % sender, 250)
    c.expect("RCPT TO:<%s>" % rcpt, 250)
    c.expect("DATA", 354)
    c.send("Subject: %s\r\n\r\nbody\r\n.\r\n" % t)
    return c.reply()


# ---- signals ---------------------------------------------------------------

def test_sighup_reload_keeps_session(ops):
    t1, t2 = tag(), tag()
    old_worker = ops.wait_worker()
    with SmtpConn(ops.port("smtp")) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<reload@remote.test>", 250)
        c.expect("RCPT TO:<a@example.test>", 250)
        mark = len(ops.log())
        ops.signal(signal.SIGHUP)
        ops.wait_log(r"event=ready", start=mark)
        # a new connection is served (by the new worker) while the old one lives
        r = send_message(ops.port("smtp"), "new@remote.test", ["b@example.test"],
                         b"Subject: %s\r\n\r\nafter reload\r\n" % t2.encode())
        assert r.code == 250, r
        c.expect("DATA", 354)
        c.send("Subject: %s\r\n\r\nacross reload\r\n.\r\n" % t1)
        r = c.reply()
        assert r.code == 250, r
        c.expect("QUIT", 221)
    assert th.find_stored(ops, "a@example.test", t1)
    assert th.find_stored(ops, "b@example.test", t2)
    assert ops.running()
    # the old worker drains and exits once its last session is gone
    deadline = time.monotonic() + 10 * th.SCALE
    while time.monotonic() < deadline and old_worker in ops.worker_pids():
        time.sleep(0.05)
    assert old_worker not in ops.worker_pids(), "old worker still running after drain"
    assert len(ops.worker_pids()) == 1


def test_sigterm_drains_and_exits_0(tern_factory):
    srv = tern_factory(name="term")
    t = tag()
    with SmtpConn(srv.port("smtp")) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<term@remote.test>", 250)
        c.expect("RCPT TO:<a@example.test>", 250)
        srv.signal(signal.SIGTERM)
        time.sleep(0.2)
        # no new connections once draining
        with pytest.raises((OSError, ServerClosed, AssertionError)):
            with SmtpConn(srv.port("smtp"), timeout=2) as c2:
                r = c2.reply()
                assert r.code == 220
        c.expect("DATA", 354)
        c.send("Subject: %s\r\n\r\nduring shutdown\r\n.\r\n" % t)
        assert c.reply().code == 250
        c.cmd("QUIT")
    rc = srv.proc.wait(15 * th.SCALE)
    assert rc == 0, srv.log_tail()
    assert th.find_stored(srv, "a@example.test", t)


def test_sigterm_idle_exit_0(tern_factory):
    srv = tern_factory(name="term2", populate_users=False)
    assert srv.stop() == 0, srv.log_tail()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_worker_runs_as_service_user(ops):
    uid = th.service_uid("tern")
    assert uid is not None and uid != 0, "tern init as root must create the system user tern"
    assert th.proc_uid(ops.pid) == 0
    worker = ops.wait_worker()
    assert th.proc_uid(worker) == uid
    with open("/proc/%d/status" % worker) as f:
        status = f.read()
    gid = re.search(r"^Gid:\s+(\d+)", status, re.M).group(1)
    assert gid != "0", "worker kept group root"
    # no supplementary groups kept from root
    groups = re.search(r"^Groups:(.*)$", status, re.M).group(1).split()
    assert "0" not in groups


# ---- fail2ban and the auth failure limit ---------------------------------------

def auth_fail(c, user, password="wrong-password"):
    tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    return c.cmd("AUTH PLAIN " + tok, timeout=30 * th.SCALE)


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None, reason="fail2ban not installed")
def test_auth_failures_limit_and_fail2ban(tern_factory):
    srv = tern_factory(name="f2b", config={"smtp.plaintext_auth_loopback": True})
    failures = 0
    with SmtpConn(srv.port("submission"), timeout=30 * th.SCALE) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        for i in range(2):
            r = auth_fail(c, "a@example.test")
            assert r.code == 535 and r.text.startswith("5.7.8"), r
            failures += 1
        r = auth_fail(c, "nobody@example.test")
        failures += 1
        # the third failure ends the session: 535 and/or 421 4.7.0, then close
        lines = list(r.lines)
        if r.code == 535:
            try:
                lines += c.reply(timeout=5).lines
            except (ServerClosed, OSError):
                pass
        assert any(l.startswith("421 4.7.0") for l in lines), lines
        closed, extra = c.closed()
        assert closed, extra
    # a user name crafted to forge a second ip= field
    with SmtpConn(srv.port("submission"), timeout=30 * th.SCALE) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        r = auth_fail(c, 'evil ip=%s x" ip=%s' % (PROXY_SPOOF, PROXY_SPOOF))
        assert r.code in (535, 501), r
        failures += r.code == 535
    deadline = time.monotonic() + 5 * th.SCALE
    while srv.log().count("event=auth_failed") < failures and time.monotonic() < deadline:
        time.sleep(0.05)
    log = srv.log()
    assert log.count("event=auth_failed") == failures, log
    for ln in log.splitlines():
        if "event=auth_failed" in ln:
            assert re.search(r"level=warn mod=auth event=auth_failed proto=smtp sid=[0-9a-f]+ "
                             r"ip=127\.0\.0\.1 user=\S.* mech=PLAIN reason=", ln), ln
    src = os.path.join(REPO, "etc", "fail2ban", "filter.d", "tern.conf")
    assert os.path.isfile(src), "missing " + src
    # as installed: next to fail2ban's own common.conf, which it includes
    fdir = os.path.join(srv.dir, "fail2ban", "filter.d")
    os.makedirs(fdir)
    filt = os.path.join(fdir, "tern.conf")
    shutil.copy(src, filt)
    shutil.copy("/etc/fail2ban/filter.d/common.conf", fdir)
    p = subprocess.run(["fail2ban-regex", srv.logfile, filt], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", p.stdout)
    assert m, p.stdout
    assert int(m.group(1)) == failures, p.stdout
    p = subprocess.run(["fail2ban-regex", "-o", "ip", srv.logfile, filt], capture_output=True,
                       text=True, timeout=60)
    ips = set(p.stdout.split())
    assert ips == {"127.0.0.1"}, p.stdout


# ---- PROXY protocol -----------------------------------------------------------

def proxy_v2(src, dst, sport, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addr)) + addr


def proxied_delivery(srv, header, t, source):
    with SmtpConn(srv.port("smtp"), source=source) as c:
        c.send(header)
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        return deliver_on(c, "a@example.test", t)


def test_proxy_v1_trusted(ops):
    t = tag()
    hdr = ("PROXY TCP4 %s 127.0.0.1 40001 %d\r\n" % (PROXY_CLIENT_V1, ops.port("smtp"))).encode()
    r = proxied_delivery(ops, hdr, t, "127.0.0.2")
    assert r.code == 250, r
    msg = th.find_stored(ops, "a@example.test", t)
    trace, _ = th.split_stored(msg[0])
    assert PROXY_CLIENT_V1.encode() in trace, trace
    assert re.search(r"ip=%s\b" % re.escape(PROXY_CLIENT_V1), ops.log())


def test_proxy_v2_trusted(ops):
    t = tag()
    r = proxied_delivery(ops, proxy_v2(PROXY_CLIENT_V2, "127.0.0.1", 40002, ops.port("smtp")),
                         t, "127.0.0.2")
    assert r.code == 250, r
    trace, _ = th.split_stored(th.find_stored(ops, "a@example.test", t)[0])
    assert PROXY_CLIENT_V2.encode() in trace, trace


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_untrusted_refused(ops, version):
    hdr = (("PROXY TCP4 %s 127.0.0.1 40003 25\r\n" % PROXY_SPOOF).encode() if version == "v1"
           else proxy_v2(PROXY_SPOOF, "127.0.0.1", 40003, 25))
    with SmtpConn(ops.port("smtp"), source="127.0.0.1") as c:
        got = b""
        try:
            g = c.reply()
            assert g.code == 220
            c.send(hdr)
            r = c.reply(timeout=3)
            got = r.lines
            assert r.code >= 500, r        # an unknown command, never accepted
            c.send(b"EHLO client.test\r\n")
            r = c.reply()
            # still 127.0.0.1 if the session goes on
            assert "127.10.20.32" not in r.text
        except (ServerClosed, OSError):
            pass                           # refused by closing: fine
    assert PROXY_SPOOF not in ops.log(), got


# ---- limits ---------------------------------------------------------------------

def test_connections_per_ip(tern_factory):
    srv = tern_factory(name="conns", populate_users=False,
                       config={"limits.connections_per_ip": 3})
    port = srv.port("smtp")
    conns = []
    try:
        # the readiness probe's connection may not be released yet: the
        # first slots are retried until the server has counted it out
        deadline = time.monotonic() + 5 * th.SCALE
        while len(conns) < 3:
            c = SmtpConn(port)
            r = c.reply()
            if r.code == 220:
                conns.append(c)
                continue
            c.close()
            assert time.monotonic() < deadline, r
            time.sleep(0.05)
        c4 = SmtpConn(port)
        conns.append(c4)
        r = c4.reply()
        assert r.code == 421 and r.text.startswith("4.7.0"), r
        assert c4.closed()[0]
        # another loopback address is another client
        c5 = SmtpConn(port, source="127.0.0.3")
        conns.append(c5)
        assert c5.reply().code == 220
        # a slot freed is usable again
        conns[0].cmd("QUIT")
        conns[0].close()
        deadline = time.monotonic() + 5 * th.SCALE
        while True:
            c6 = SmtpConn(port)
            conns.append(c6)
            r = c6.reply()
            if r.code == 220 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.code == 220, r
    finally:
        for c in conns:
            c.close()


def test_quota(ops):
    """A user with a 10K quota: messages are taken until the next one would
    not fit, which is refused with 452 4.2.2 (at RCPT, or at the end of data
    when only then the size is known); a declared SIZE= that does not fit is
    refused at RCPT; usage never goes over the quota."""
    accepted = 0
    refused = None
    body = ("x" * 70 + "\r\n") * 40      # about 2.9 KB
    for i in range(10):
        with SmtpConn(ops.port("smtp")) as c:
            c.expect(None, 220)
            c.expect("EHLO client.test", 250)
            c.expect("MAIL FROM:<quota@remote.test>", 250)
            r = c.cmd("RCPT TO:<q@example.test>")
            if r.code == 250:
                c.expect("DATA", 354)
                c.send("Subject: quota %d\r\n\r\n%s.\r\n" % (i, body))
                r = c.reply()
            if r.code != 250:
                refused = r
                break
            accepted += 1
    assert refused is not None and refused.code == 452 and refused.text.startswith("4.2.2"), refused
    assert 2 <= accepted <= 4, accepted
    used = sum(size for _, size, _ in ops.message_rows("q@example.test"))
    assert used <= 10 * 1024, used
    with SmtpConn(ops.port("smtp")) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<quota@remote.test> SIZE=%d" % (10 * 1024 - used + 1), 250)
        r = c.cmd("RCPT TO:<q@example.test>")
        assert r.code == 452 and r.text.startswith("4.2.2"), r
        # other users are not affected
        c.expect("RCPT TO:<a@example.test>", 250)


def test_message_size_limit(ops):
    with SmtpConn(ops.port("smtp")) as c:
        c.expect(None, 220)
        r = c.expect("EHLO client.test", 250)
        assert r.has("SIZE 20000"), r
        r = c.cmd("MAIL FROM:<big@remote.test> SIZE=30000")
        assert r.code == 552 and r.text.startswith("5.3.4"), r
        c.expect("MAIL FROM:<big@remote.test>", 250)
        c.expect("RCPT TO:<b@example.test>", 250)
        c.expect("DATA", 354)
        t = tag()
        c.send("Subject: %s\r\n\r\n%s.\r\n" % (t, ("y" * 98 + "\r\n") * 300))
        r = c.reply()
        assert r.code == 552 and r.text.startswith("5.3.4"), r
        c.expect("NOOP", 250)
        # BDAT over the limit too
        c.expect("MAIL FROM:<big@remote.test>", 250)
        c.expect("RCPT TO:<b@example.test>", 250)
        chunk = b"z" * 25000
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply()
        assert r.code == 552 and r.text.startswith("5.3.4"), r
        c.expect("RSET", 250)
    assert not th.find_stored(ops, "b@example.test", t)


def test_idle_timeout(tern_factory):
    srv = tern_factory(name="idle", populate_users=False, config={"limits.timeout": 1})
    with SmtpConn(srv.port("smtp"), timeout=10 * th.SCALE) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        start = time.monotonic()
        r = c.reply(timeout=10 * th.SCALE)
        assert r.code == 421 and r.text.startswith("4."), r
        assert time.monotonic() - start >= 0.5
        assert c.closed()[0]


def test_implicit_tls_port_refuses_plaintext(ops):
    with SmtpConn(ops.port("submissions"), timeout=3 * th.SCALE) as c:
        c.send(b"EHLO client.test\r\n")
        try:
            data = c.sock.recv(4096)
        except (OSError, socket.timeout):
            data = b""
        assert not data.startswith(b"220") and b"250" not in data, data
