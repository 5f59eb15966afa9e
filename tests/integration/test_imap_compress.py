"""IMAP COMPRESS=DEFLATE (RFC 4978) end to end with a raw client that
speaks raw DEFLATE itself (zlib, wbits=-15): after LOGIN on plaintext
loopback, after STARTTLS, and on implicit TLS with a command pipelined in
the same packet as COMPRESS; SELECT, APPEND (synchronising literal and
LITERAL+), FETCH of a 1 MB message byte-exact while the client reads
slowly (the server pauses and resumes its output), IDLE updates pushed
through the compressor at once; a second COMPRESS ->
NO [COMPRESSIONACTIVE], bad arguments -> BAD; a corrupt stream closes the
connection (logged) while the server goes on serving others; a "zip bomb"
line does not grow the worker's memory; and mbsync (isync 1.4 uses
COMPRESS=DEFLATE whenever it is offered) syncing through it."""
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import zlib

import pytest

import tern as tern_harness
from imapc import tls_ctx
from conftest import finish

USER = "z@example.test"
USER2 = "y@example.test"
PASSWORD = "zip-Secret-1"



@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="compress")
    s.set("imap.plaintext_auth_loopback", True)
    s.add_domain("example.test")
    s.add_user(USER, PASSWORD)
    s.add_user(USER2, PASSWORD)
    s.start()
    yield s
    finish(s)


class ZClient:
    """Raw IMAP over a socket (plain or TLS) that can switch on DEFLATE."""

    def __init__(self, srv, kind="imap", starttls=False, login=True, user=USER):
        self.srv = srv
        sock = socket.create_connection(("127.0.0.1", srv.port(kind)),
                                        timeout=30 * tern_harness.SCALE)
        if kind == "imaps":
            sock = tls_ctx().wrap_socket(sock)
        self.s = sock
        self.buf = b""
        self.z_out = None
        self.z_in = None
        self.n = 0
        assert self.line().startswith(b"* OK")
        if starttls:
            t, _ = self.cmd("STARTTLS")
            assert t.startswith("OK")
            self.s = tls_ctx().wrap_socket(self.s)
        if login:
            t, _ = self.cmd("LOGIN %s %s" % (user, PASSWORD))
            assert t.startswith("OK"), t
            self.login_reply = t

    # -- bytes --
    def send(self, data):
        if self.z_out is not None:
            data = self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("closed")
        if self.z_in is not None:
            d = self.z_in.decompress(d)
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """One response with its literals inline."""
        out = b""
        while True:
            ln = self.line()
            out += ln
            m = re.search(rb"~?\{(\d+)\}$", ln)
            if not m:
                return out
            out += b"\r\n" + self.take(int(m.group(1)))

    def tagged(self, tag):
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag.encode() + b" "):
                return r[len(tag) + 1:].decode(), untagged
            untagged.append(r)

    def cmd(self, text):
        self.n += 1
        tag = "t%d" % self.n
        self.send(("%s %s\r\n" % (tag, text)).encode())
        return self.tagged(tag)

    def compress(self, pipelined=b""):
        """COMPRESS DEFLATE; pipelined (plain bytes) goes compressed in the
        same packet.  The tagged OK comes uncompressed; everything the
        server sends after its CRLF is raw DEFLATE."""
        self.n += 1
        tag = "t%d" % self.n
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = ("%s COMPRESS DEFLATE\r\n" % tag).encode()
        if pipelined:
            data += z.compress(pipelined) + z.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)
        while True:
            ln = self.line()
            if ln.startswith(tag.encode() + b" "):
                break
        assert ln == tag.encode() + b" OK DEFLATE active", ln
        self.z_out = z
        self.z_in = zlib.decompressobj(-15)
        rest, self.buf = self.buf, b""
        self.buf = self.z_in.decompress(rest)

    def close(self):
        try:
            t, u = self.cmd("LOGOUT")
            assert t.startswith("OK")
            assert any(x.startswith(b"* BYE") for x in u)
        finally:
            self.s.close()


def message(subject, size=0):
    body = b"".join(b"line %d of a message that compresses well enough\r\n" % i
                    for i in range(max(1, size // 50)))
    return (b"From: a@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\n" %
            (USER.encode(), subject.encode())) + body


def append_sync(c, mailbox, msg):
    """APPEND with a synchronising literal: wait for the continuation."""
    c.n += 1
    tag = "t%d" % c.n
    c.send(b"%s APPEND %s {%d}\r\n" % (tag.encode(), mailbox.encode(), len(msg)))
    assert c.line().startswith(b"+")
    c.send(msg + b"\r\n")
    return c.tagged(tag)


def compress_lines(srv):
    return [ln for ln in srv.log().splitlines() if "event=compress " in ln]


def test_compress_plaintext_loopback(srv):
    c = ZClient(srv)
    assert "COMPRESS=DEFLATE" in c.login_reply
    before = len(compress_lines(srv))
    c.compress()
    t, u = c.cmd("CAPABILITY")
    assert t.startswith("OK")
    assert b"IMAP4rev1" in u[0] and b"COMPRESS=DEFLATE" not in u[0]
    msg = message("plain compressed", 3000)
    t, _ = append_sync(c, "INBOX", msg)
    assert t.startswith("OK") and "APPENDUID" in t
    t, u = c.cmd("SELECT INBOX")
    assert t.startswith("OK [READ-WRITE]")
    exists = [int(x.split()[1]) for x in u if x.endswith(b" EXISTS")]
    assert exists and exists[0] >= 1
    t, u = c.cmd("FETCH %d (BODY.PEEK[] RFC822.SIZE)" % exists[0])
    assert t.startswith("OK")
    assert b"RFC822.SIZE %d" % len(msg) in u[0]
    assert b"BODY[] {%d}\r\n" % len(msg) + msg in u[0]
    # RFC 4978 3: a second COMPRESS
    t, _ = c.cmd("COMPRESS DEFLATE")
    assert t.startswith("NO [COMPRESSIONACTIVE]")
    t, _ = c.cmd("NOOP")
    assert t.startswith("OK")
    c.close()
    lines = compress_lines(srv)
    assert len(lines) == before + 1 and "tls=no" in lines[-1]
    srv.wait_log(r"event=compress_stats in_wire=\d+ in=\d+ out=\d+ out_wire=\d+")


def test_compress_arguments_and_state(srv):
    c = ZClient(srv, login=False)
    t, _ = c.cmd("COMPRESS DEFLATE")
    assert t.startswith("BAD")        # not authenticated yet
    t, _ = c.cmd("LOGIN %s %s" % (USER, PASSWORD))
    assert t.startswith("OK")
    for bad in ("COMPRESS", "COMPRESS GZIP", "COMPRESS DEFLATE X", 'COMPRESS "DEFLATE"'):
        t, _ = c.cmd(bad)
        assert t.startswith("BAD"), (bad, t)
    # allowed in the selected state too; lowercase mechanism name
    t, _ = c.cmd("SELECT INBOX")
    assert t.startswith("OK")
    c.n += 1
    c.s.sendall(b"t%d compress deflate\r\n" % c.n)
    assert c.line() == b"t%d OK DEFLATE active" % c.n
    c.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
    c.z_in = zlib.decompressobj(-15)
    c.buf = c.z_in.decompress(c.buf)
    t, _ = c.cmd("CHECK")
    assert t.startswith("OK")
    c.close()


def test_compress_after_starttls(srv):
    c = ZClient(srv, starttls=True)
    c.compress()
    t, u = c.cmd("LIST \"\" \"*\"")
    assert t.startswith("OK") and any(b"INBOX" in x for x in u)
    msg = message("over tls", 20000)
    c.n += 1
    tag = "t%d" % c.n
    # LITERAL+: no continuation
    c.send(b"%s APPEND INBOX {%d+}\r\n" % (tag.encode(), len(msg)) + msg + b"\r\n")
    t, _ = c.tagged(tag)
    assert t.startswith("OK")
    uid = int(re.search(r"APPENDUID \d+ (\d+)", t).group(1))
    t, _ = c.cmd("SELECT INBOX")
    assert t.startswith("OK")
    t, u = c.cmd("UID FETCH %d (BODY.PEEK[])" % uid)
    assert t.startswith("OK") and u[0].endswith(msg + b")")
    c.close()
    assert "tls=yes" in compress_lines(srv)[-1]


def test_compress_pipelined_same_packet_implicit_tls(srv):
    c = ZClient(srv, kind="imaps")
    c.n += 2
    c.compress(pipelined=b"p1 NOOP\r\np2 SELECT INBOX\r\np3 CAPABILITY\r\n")
    t, _ = c.tagged("p1")
    assert t.startswith("OK")
    t, _ = c.tagged("p2")
    assert t.startswith("OK")
    t, u = c.tagged("p3")
    assert t.startswith("OK") and b"COMPRESS" not in u[0]
    c.close()


def test_idle_pushes_through_compression(srv):
    """Updates pushed from a notify callback (not from input) are flushed
    at once: the IDLE client sees EXISTS without sending anything."""
    a = ZClient(srv, kind="imaps", user=USER2)
    a.compress()
    t, _ = a.cmd("SELECT INBOX")
    assert t.startswith("OK")
    a.n += 1
    tag = "t%d" % a.n
    a.send(b"%s IDLE\r\n" % tag.encode())
    assert a.line().startswith(b"+")
    b = ZClient(srv, kind="imaps", user=USER2)
    t, _ = append_sync(b, "INBOX", message("idle push"))
    assert t.startswith("OK")
    b.close()
    a.s.settimeout(10 * tern_harness.SCALE)
    for _ in range(5):
        if a.line().endswith(b" EXISTS"):
            break
    else:
        raise AssertionError("no EXISTS while idling")
    a.send(b"DONE\r\n")
    t, _ = a.tagged(tag)
    assert t.startswith("OK")
    a.close()


def test_corrupt_stream_closes(srv):
    c = ZClient(srv, kind="imaps")
    c.compress()
    t, _ = c.cmd("NOOP")
    assert t.startswith("OK")
    start = len(srv.log())
    c.s.sendall(b"\xff\xfe\xfd\xfc garbage that is not deflate \x00\x01")
    with pytest.raises((EOFError, ConnectionResetError, ssl.SSLError)):
        for _ in range(100):
            c._fill()
    c.s.close()
    srv.wait_log(r"event=compress_error", start=start)
    srv.wait_log(r"reason=\"?compression error", start=start)
    # the server goes on serving others, compressed or not
    d = ZClient(srv, kind="imaps", user=USER2)
    d.compress()
    t, _ = d.cmd("SELECT INBOX")
    assert t.startswith("OK")
    d.close()


def worker_rss_kib(srv):
    best = 0
    for pid in srv.worker_pids():
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    best = max(best, int(ln.split()[1]))
    return best


def test_zip_bomb_line_bounded(srv):
    """A 64 MiB line compressed to ~64 KiB: the line limit applies to the
    inflated bytes and inflating is bounded, so the worker's memory does
    not follow the inflated size; the session survives the BAD."""
    c = ZClient(srv, kind="imaps")
    c.compress()
    rss0 = worker_rss_kib(srv)
    c.n += 1
    big = 64 << 20
    z = c.z_out
    c.s.sendall(z.compress(b"b1 NOOP ") + z.flush(zlib.Z_NO_FLUSH))
    chunk = b"a" * (1 << 20)
    for _ in range(big >> 20):
        data = z.compress(chunk)
        if data:
            c.s.sendall(data)
    c.s.sendall(z.compress(b"\r\nb2 NOOP\r\n") + z.flush(zlib.Z_SYNC_FLUSH))
    got = []
    try:
        while True:
            r = c.response()
            got.append(r)
            if r.startswith(b"b2 ") or r.startswith(b"* BYE"):
                break
    except (EOFError, ConnectionResetError):
        pass
    text = b"\n".join(got)
    # either the long line is refused and the next command answered, or
    # the server hangs up on it: never a crash, never 64 MiB in memory
    assert b"b1 BAD" in text or b"* BYE" in text or not got, text[:300]
    if b"b1 BAD" in text:
        assert got[-1].startswith(b"b2 OK")
    rss1 = worker_rss_kib(srv)
    # (ASan's quarantine keeps freed memory resident: no figure there)
    if not tern_harness.SANITIZED:
        assert rss1 - rss0 < 32 * 1024, (rss0, rss1)
    c.s.close()
    # still serving
    d = ZClient(srv, kind="imaps", user=USER2)
    d.close()


def test_large_fetch_slow_reader(srv):
    """A 1 MB message (half of it incompressible) through compression over
    TLS, byte-exact, with the client reading slowly at first so the server
    has to pause and resume its output (the pump)."""
    rnd = random.Random(4978)
    noise = b"".join(b"%064x\r\n" % rnd.getrandbits(256) for _ in range(8000))
    msg = message("big one", 500 * 1024) + noise
    assert len(msg) > 1000 * 1000
    c = ZClient(srv, kind="imaps")
    c.compress()
    uids = []
    for _ in range(3):
        c.n += 1
        tag = "t%d" % c.n
        c.send(b"%s APPEND INBOX {%d+}\r\n" % (tag.encode(), len(msg)) + msg + b"\r\n")
        t, _ = c.tagged(tag)
        assert t.startswith("OK")
        uids.append(int(re.search(r"APPENDUID \d+ (\d+)", t).group(1)))
    t, _ = c.cmd("SELECT INBOX")
    assert t.startswith("OK")
    # three copies in one command: several MB of output
    c.n += 1
    tag = "t%d" % c.n
    c.send(b"%s UID FETCH %d,%d,%d (BODY.PEEK[])\r\n" % (tag.encode(), *uids))
    time.sleep(1.0 * tern_harness.SCALE)
    # now read in small sips for a while
    c.s.settimeout(30 * tern_harness.SCALE)
    for _ in range(20):
        d = c.s.recv(4096)
        assert d
        c.buf += c.z_in.decompress(d)
        time.sleep(0.01)
    t, u = c.tagged(tag)
    assert t.startswith("OK")
    bodies = [x for x in u if b"FETCH" in x[:40]]
    assert len(bodies) == 3
    for b in bodies:
        assert b.endswith(b"{%d}\r\n" % len(msg) + msg + b")")
    c.close()


# ---- mbsync ----------------------------------------------------------------

@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
def test_mbsync_uses_compress(srv):
    user = "m@example.test"
    srv.add_user(user, PASSWORD)
    c = ZClient(srv, kind="imaps", user=user)
    sent = []
    for i in range(40):
        msg = message("mbsync %d" % i, 2000 + 300 * i).replace(USER.encode(), user.encode())
        t, _ = append_sync(c, "INBOX", msg)
        assert t.startswith("OK")
        sent.append(msg)
    c.close()
    tmp = tempfile.mkdtemp(prefix="tern-mbsync-z-")
    try:
        mail = os.path.join(tmp, "mail")
        os.makedirs(mail)
        conf = os.path.join(tmp, "mbsyncrc")
        with open(conf, "w") as f:
            f.write("""IMAPAccount tern
Host 127.0.0.1
Port %d
User %s
Pass %s
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account tern

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
SyncState *
Sync All
""" % (srv.port("imaps"), user, PASSWORD, os.path.join(srv.dir, "tls", "cert.pem"),
                mail, mail))
        start = len(srv.log())
        p = subprocess.run(["mbsync", "-V", "-c", conf, "-a"], capture_output=True,
                           timeout=120 * tern_harness.SCALE, env=dict(os.environ, HOME=tmp))
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        assert p.returncode == 0, out[-3000:]
        # mbsync asked for it, and Tern compressed that session
        log = srv.log()[start:]
        m = re.search(r"sid=(\w+) event=login ip=\S+ user=\"?%s" % re.escape(user), log)
        assert m, log[-2000:]
        assert re.search(r"sid=%s event=compress " % m.group(1), log), log[-2000:]
        files = []
        for sub in ("cur", "new"):
            d = os.path.join(mail, "INBOX", sub)
            files += [open(os.path.join(d, n), "rb").read() for n in os.listdir(d)]
        assert len(files) == len(sent)
        # Maildir holds LF line ends (and maybe an X-TUID line)
        got = sorted(re.sub(rb"X-TUID: \S+\n", b"", f) for f in files)
        want = sorted(m.replace(b"\r\n", b"\n") for m in sent)
        assert got == want
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
