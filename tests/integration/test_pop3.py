"""POP3 end to end: Python's poplib (STLS, USER/PASS, RETR, TOP, UIDL,
DELE, QUIT), raw AUTH PLAIN and SCRAM-SHA-256 on POP3S, [IN-USE], DELE
without QUIT, a message expunged meanwhile, EXPIRE and delete-to-Trash,
curl's POP3 client, and fetchmail pulling 500 messages into a local MDA.

Each test module server is a separate Tern instance (tests/harness/tern.py)
with POP3 and POP3S on their offset ports."""
import base64
import concurrent.futures
import hashlib
import hmac
import os
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

import tern as tern_harness
from conftest import finish

USER = "pop@example.test"
PASSWORD = "pop-Secret-9"
OTHER = "pop2@example.test"


def tls_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_server(config=None, name="pop3"):
    srv = tern_harness.TernServer(config=config, name=name)
    srv.add_domain("example.test")
    srv.add_user(USER, PASSWORD)
    srv.add_user(OTHER, PASSWORD)
    srv.start()
    return srv


@pytest.fixture(scope="module")
def srv():
    s = make_server()
    yield s
    finish(s)


def deliver(srv, rcpt, count, make_body, sessions=4):
    """Deliver count messages to rcpt through the MX port, over a few
    parallel SMTP sessions (each message is acknowledged after commit)."""
    def worker(indexes):
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as s:
            for i in indexes:
                s.sendmail("sender@remote.test", [rcpt], make_body(i))
    chunks = [list(range(k, count, sessions)) for k in range(sessions)]
    with concurrent.futures.ThreadPoolExecutor(sessions) as ex:
        for f in [ex.submit(worker, c) for c in chunks if c]:
            f.result()


def body(i, extra=""):
    return ("From: sender@remote.test\r\nTo: %s\r\nSubject: message %d\r\n\r\n"
            "line one of %d\r\n.starts with a dot\r\n..two dots\r\n%s" % (USER, i, i, extra)).encode()


def clear(srv, addr=USER):
    """Empty addr's INBOX through POP3 (DELE all, QUIT)."""
    p = login(srv, addr)
    n, _ = p.stat()
    for i in range(1, n + 1):
        p.dele(i)
    p.quit()


def login(srv, addr=USER, password=PASSWORD, tries=50):
    """poplib over STLS, logged in; retries [IN-USE] while a previous
    session of the same user is still closing."""
    for _ in range(tries):
        p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=30)
        p.stls(tls_ctx())
        p.user(addr)
        try:
            p.pass_(password)
            return p
        except poplib.error_proto as e:
            p.close()
            if b"IN-USE" not in e.args[0]:
                raise
            time.sleep(0.1)
    raise AssertionError("maildrop stayed locked")


def inbox(srv, addr=USER):
    return srv.message_rows(addr)


# ---------------------------------------------------------------- poplib

def test_poplib_stls_user_pass_retr_top_uidl_dele(srv):
    clear(srv)
    deliver(srv, USER, 3, lambda i: body(i, ".\r\nafter a lone dot\r\n"), sessions=1)
    rows = inbox(srv)
    assert len(rows) == 3
    uidv = srv.query("SELECT b.uidvalidity FROM mailboxes b JOIN users u ON b.user_id = u.id"
                     " WHERE u.address = ? AND b.name = 'INBOX'", (USER,))[0][0]

    p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=30)
    welcome = p.getwelcome()
    assert welcome.startswith(b"+OK") and b"<" not in welcome   # no APOP timestamp
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    # no password before TLS
    with pytest.raises(poplib.error_proto) as e:
        p.user(USER)
    assert b"[AUTH]" in e.value.args[0]
    p.stls(tls_ctx())
    caps = p.capa()
    for k in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE",
              "IMPLEMENTATION"):
        assert k in caps, caps
    assert "STLS" not in caps
    assert caps["SASL"] == ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
    assert caps["EXPIRE"] == ["NEVER"]
    with pytest.raises(poplib.error_proto):
        p.apop(USER, PASSWORD)
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")

    count, size = p.stat()
    assert count == 3 and size == sum(r[1] for r in rows)
    _, listing, _ = p.list()
    assert [l.split() for l in listing] == [[b"%d" % (i + 1), b"%d" % r[1]] for i, r in enumerate(rows)]
    _, uidls, _ = p.uidl()
    want = [b"%d %08X%08X" % (i + 1, r[0], uidv) for i, r in enumerate(rows)]
    assert uidls == want
    assert p.uidl(2) == b"+OK " + want[1]

    # RETR is the stored file, byte for byte (poplib undoes the stuffing)
    for i, (_, _, path) in enumerate(rows):
        with open(path, "rb") as f:
            stored = f.read()
        _, lines, octets = p.retr(i + 1)
        assert b"\r\n".join(lines) + b"\r\n" == stored
        assert octets >= len(stored)
    # TOP 0: the header and the blank line
    with open(rows[0][2], "rb") as f:
        stored = f.read()
    head = stored[:stored.index(b"\r\n\r\n") + 2]
    _, lines, _ = p.top(1, 0)
    assert b"\r\n".join(lines) + b"\r\n" == head + b"\r\n"
    _, lines, _ = p.top(1, 1)
    assert lines[-1] == b"line one of 0"

    with pytest.raises(poplib.error_proto):
        p.retr(4)
    assert p.dele(1).startswith(b"+OK")
    with pytest.raises(poplib.error_proto):
        p.retr(1)                      # deleted in this session
    assert p.stat()[0] == 2
    p.rset()
    assert p.stat()[0] == 3
    p.dele(1)
    p.dele(3)
    assert p.quit().startswith(b"+OK")

    left = inbox(srv)
    assert [r[0] for r in left] == [rows[1][0]]
    # the files are unlinked in the background after the +OK to QUIT
    deadline = time.monotonic() + 10
    while any(os.path.exists(r[2]) for r in (rows[0], rows[2])) and time.monotonic() < deadline:
        time.sleep(0.05)
    for r in (rows[0], rows[2]):
        assert not os.path.exists(r[2])
    used = srv.query("SELECT used_bytes, used_messages FROM users WHERE address = ?", (USER,))[0]
    assert used == (rows[1][1], 1)
    # RETR'd messages got \Seen and a retrieval time; message 2 too (RETR)
    flags = srv.query("SELECT flags, pop3_retrieved FROM messages")
    assert flags[0][0] == "\\Seen" and flags[0][1] is not None
    # the store is consistent
    v = srv.tern("store", "verify")
    assert v.returncode == 0, v.stdout + v.stderr


def test_uidl_stable_across_sessions(srv):
    clear(srv)
    deliver(srv, USER, 2, body, sessions=1)
    p = login(srv)
    first = p.uidl()[1]
    p.quit()
    p = login(srv)
    assert p.uidl()[1] == first
    p.dele(1)
    p.quit()
    p = login(srv)
    assert p.uidl()[1] == [b"1 " + first[1].split()[1]]
    p.quit()


# ---------------------------------------------------------------- raw AUTH on 995

class Raw:
    def __init__(self, port, tls=True):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock = tls_ctx().wrap_socket(s) if tls else s
        self.f = self.sock.makefile("rb")

    def line(self):
        ln = self.f.readline()
        assert ln.endswith(b"\r\n"), ln
        return ln[:-2]

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.line()

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


def test_pop3s_auth_plain_initial_response(srv):
    c = Raw(srv.port("pop3s"))
    assert c.line().startswith(b"+OK")
    ir = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
    assert c.cmd("AUTH PLAIN " + ir).startswith(b"+OK")
    assert c.cmd("STAT").startswith(b"+OK")
    assert c.cmd("QUIT").startswith(b"+OK")
    c.close()

    # without initial response, a wrong password: [AUTH], logged for fail2ban
    c = Raw(srv.port("pop3s"))
    c.line()
    assert c.cmd("AUTH PLAIN") == b"+ "
    bad = base64.b64encode(b"\0" + USER.encode() + b"\0wrong").decode()
    assert c.cmd(bad).startswith(b"-ERR [AUTH]")
    assert c.cmd("AUTH PLAIN") == b"+ "
    assert c.cmd("*").startswith(b"-ERR")
    c.close()
    srv.wait_log(r"event=auth_failed proto=pop3 sid=\w+ ip=127\.0\.0\.1 user=pop@example\.test "
                 r"mech=PLAIN")


def test_pop3s_auth_scram_sha_256(srv):
    c = Raw(srv.port("pop3s"))
    c.line()
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (USER, nonce)
    ch = c.cmd("AUTH SCRAM-SHA-256 " + base64.b64encode(("n,," + first_bare).encode()).decode())
    assert ch.startswith(b"+ "), ch
    server_first = base64.b64decode(ch[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_wo = "c=biws,r=" + attrs["r"]
    auth_msg = ",".join([first_bare, server_first, final_wo]).encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    ch = c.cmd(base64.b64encode((final_wo + ",p=" + base64.b64encode(proof).decode()).encode()).decode())
    assert ch.startswith(b"+ "), ch
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want_v = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
    assert base64.b64decode(ch[2:]).decode() == "v=" + want_v
    assert c.cmd("").startswith(b"+OK")
    assert c.cmd("QUIT").startswith(b"+OK")
    c.close()


# ---------------------------------------------------------------- concurrency

def test_in_use_second_session_refused(srv):
    p = login(srv)
    c = Raw(srv.port("pop3s"))
    c.line()
    assert c.cmd("USER " + USER).startswith(b"+OK")
    r = c.cmd("PASS " + PASSWORD)
    assert r.startswith(b"-ERR [IN-USE]"), r
    # still in AUTHORIZATION: another user may log in on the same connection
    assert c.cmd("USER " + OTHER).startswith(b"+OK")
    assert c.cmd("PASS " + PASSWORD).startswith(b"+OK")
    c.cmd("QUIT")
    c.close()
    p.quit()
    login(srv).quit()      # the lock was released at QUIT


def test_dele_without_quit_deletes_nothing(srv):
    clear(srv)
    deliver(srv, USER, 2, body, sessions=1)
    before = inbox(srv)
    c = Raw(srv.port("pop3s"))
    c.line()
    c.cmd("USER " + USER)
    assert c.cmd("PASS " + PASSWORD).startswith(b"+OK")
    assert c.cmd("DELE 1").startswith(b"+OK")
    assert c.cmd("DELE 2").startswith(b"+OK")
    c.close()              # dropped: no UPDATE state
    p = login(srv)
    assert p.stat()[0] == 2
    p.quit()
    assert inbox(srv) == before


def test_message_expunged_meanwhile(srv):
    clear(srv)
    deliver(srv, USER, 2, body, sessions=1)
    rows = inbox(srv)
    p = login(srv)
    assert p.stat()[0] == 2
    # another session (IMAP) expunges message 1: row gone, file unlinked
    import sqlite3
    db = sqlite3.connect(os.path.join(srv.data, "index.db"), timeout=10)
    db.execute("DELETE FROM messages WHERE uid = ? AND mailbox_id ="
               " (SELECT b.id FROM mailboxes b JOIN users u ON b.user_id = u.id"
               "  WHERE u.address = ? AND b.name = 'INBOX')", (rows[0][0], USER))
    db.execute("UPDATE mailboxes SET messages = messages - 1, bytes = bytes - ? WHERE id ="
               " (SELECT b.id FROM mailboxes b JOIN users u ON b.user_id = u.id"
               "  WHERE u.address = ? AND b.name = 'INBOX')", (rows[0][1], USER))
    db.execute("UPDATE users SET used_bytes = used_bytes - ?, used_messages = used_messages - 1"
               " WHERE address = ?", (rows[0][1], USER))
    db.commit()
    db.close()
    srv._fix_owner()
    os.unlink(rows[0][2])
    with pytest.raises(poplib.error_proto) as e:
        p.retr(1)
    assert b"deleted" in e.value.args[0]
    assert p.retr(2)[0].startswith(b"+OK")
    p.dele(1)            # still numbered; deleting it at QUIT is a no-op
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    assert inbox(srv) == []
    v = srv.tern("store", "verify")
    assert v.returncode == 0, v.stdout + v.stderr


# ---------------------------------------------------------------- policies

def test_delete_to_trash_and_expire(tern_factory):
    srv = tern_factory(populate_users=False, start=False, name="pop3pol",
                       config={"pop3.delete_to_trash": True, "pop3.expire_days": 3})
    srv.add_domain("example.test")
    srv.add_user(USER, PASSWORD)
    srv.start()
    deliver(srv, USER, 3, body, sessions=1)
    p = login(srv)
    assert p.capa()["EXPIRE"] == ["3"]
    p.retr(1)                  # retrieved: expires in 3 days
    p.dele(2)                  # to Trash
    p.quit()
    assert len(inbox(srv)) == 2
    assert len(srv.message_rows(USER, "Trash")) == 1
    # 4 days later the retrieved message is gone, the other stays
    srv.stop()
    srv.start(env={"TERN_CLOCK_OFFSET": str(4 * 86400)})
    p = login(srv)
    assert p.stat()[0] == 1
    p.quit()
    assert len(inbox(srv)) == 1
    assert len(srv.message_rows(USER, "Trash")) == 1
    v = srv.tern("store", "verify")
    assert v.returncode == 0, v.stdout + v.stderr


def test_plaintext_auth_loopback_setting(tern_factory):
    srv = tern_factory(populate_users=False, start=False, name="pop3lo",
                       config={"pop3.plaintext_auth_loopback": True})
    srv.add_domain("example.test")
    srv.add_user(USER, PASSWORD)
    srv.start()
    p = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=30)
    assert "USER" in p.capa()
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


# ---------------------------------------------------------------- curl

@pytest.mark.skipif(shutil.which("curl") is None, reason="curl missing")
def test_curl_pop3(srv):
    clear(srv)
    deliver(srv, USER, 2, lambda i: body(i, ".\r\n"), sessions=1)
    rows = inbox(srv)
    base = "pop3://127.0.0.1:%d" % srv.port("pop3")
    common = ["curl", "-sS", "--ssl-reqd", "-k", "--user", "%s:%s" % (USER, PASSWORD)]
    r = subprocess.run(common + [base + "/"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(b"\r\n")[:2] == [b"1 %d" % rows[0][1], b"2 %d" % rows[1][1]]
    r = subprocess.run(common + [base + "/2"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(rows[1][2], "rb") as f:
        assert r.stdout == f.read()
    # DELE through a custom request, then the message is gone
    r = subprocess.run(common + ["-X", "DELE", "-I", base + "/1"], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 10
    while len(inbox(srv)) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r[0] for r in inbox(srv)] == [rows[1][0]]


# ---------------------------------------------------------------- fetchmail

@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail missing")
def test_fetchmail_500(srv, tmp_path):
    clear(srv, OTHER)
    n = 500
    deliver(srv, OTHER, n, lambda i: ("Subject: fm %d\r\n\r\nfetchmail body %d\r\n.\r\n%s\r\n"
                                      % (i, i, "x" * (i % 300))).encode(), sessions=6)
    rows = srv.message_rows(OTHER)
    assert len(rows) == n
    total = sum(r[1] for r in rows)
    out = tmp_path / "out"
    out.mkdir()
    mda = tmp_path / "mda.sh"
    mda.write_text("#!/bin/sh\ncat > \"$(mktemp %s/m.XXXXXXXX)\"\n" % out)
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        "poll 127.0.0.1 service %d protocol pop3 uidl:\n"
        "  user '%s' there with password '%s' is root here\n"
        "  sslproto tls1.2+ no sslcertck\n"
        "  fetchall nokeep mda '%s'\n" % (srv.port("pop3"), OTHER, PASSWORD, mda))
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    p = subprocess.run(["fetchmail", "-f", str(rc), "-v", "--nosyslog", "--nodetach"],
                       capture_output=True, text=True, timeout=300, env=env)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-3000:]
    files = sorted(out.iterdir())
    assert len(files) == n, log[-2000:]
    # fetchmail reports each message's octets as LISTed: they sum to the store's sizes
    import re
    octets = [int(x) for x in re.findall(r"reading message \S+ of %d \((\d+) octets\)" % n, log)]
    assert len(octets) == n and sum(octets) == total, log[-2000:]
    seen = set()
    for f in files:
        data = f.read_bytes()
        m = re.search(rb"fetchmail body (\d+)", data)
        assert m, data[:300]
        seen.add(int(m.group(1)))
        assert b"\n.\n" in data or b"\r\n.\r\n" in data    # the lone dot survived unstuffed
    assert seen == set(range(n))
    assert srv.message_rows(OTHER) == []
    used = srv.query("SELECT used_bytes, used_messages FROM users WHERE address = ?", (OTHER,))[0]
    assert used == (0, 0)
