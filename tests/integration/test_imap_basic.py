"""IMAP end to end: Python's imaplib over STARTTLS (143) and implicit TLS
(993), two raw sessions on one mailbox seeing each other's changes at the
moments RFC 3501 7.4.1 allows, IDLE getting EXISTS pushed after an SMTP
delivery, and curl's IMAP client."""
import imaplib
import re
import smtplib
import socket
import subprocess
import time

import pytest

import tern as tern_harness
from imapc import tls_ctx
from conftest import finish

USER, PASSWORD = "im@example.test", "im-Secret-1"
USER2 = "im2@example.test"



def deliver(srv, rcpt, subject, body="hello"):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
        s.sendmail("sender@remote.test", [rcpt],
                   ("From: sender@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n"
                    % (rcpt, subject, body)).encode())


@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="imap")
    s.add_domain("example.test")
    s.add_user(USER, PASSWORD)
    s.add_user(USER2, PASSWORD)
    s.start()
    yield s
    finish(s)


class Raw:
    """A minimal raw IMAP client over implicit TLS with bounded reads."""

    def __init__(self, port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10 * tern_harness.SCALE)
        self.s = tls_ctx().wrap_socket(sock)
        self.buf = b""
        self.n = 0
        assert self.line().startswith("* OK")

    def line(self, timeout=None):
        self.s.settimeout(timeout or 10 * tern_harness.SCALE)
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("utf-8", "replace")

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def cmd(self, text):
        """Send a tagged command; return (untagged lines, tagged line)."""
        self.n += 1
        tag = "t%d" % self.n
        self.send("%s %s" % (tag, text))
        untagged = []
        while True:
            ln = self.line()
            if ln.startswith(tag + " "):
                return untagged, ln
            untagged.append(ln)

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, EOFError):
            pass
        self.s.close()


def test_imaplib_starttls(srv):
    deliver(srv, USER, "first")
    m = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    assert "LOGINDISABLED" in m.capabilities
    m.starttls(ssl_context=tls_ctx())
    assert "AUTH=PLAIN" in m.capabilities
    assert m.login(USER, PASSWORD)[0] == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) >= 1
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
    assert typ == "OK" and b"Subject: first" in data[0][1]
    typ, data = m.append("INBOX", r"(\Flagged)", None, b"Subject: appended\r\n\r\nhi\r\n")
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = m.search(None, "FLAGGED")
    assert data[0].split() == [b"2"]
    assert m.store("1", "+FLAGS", r"(\Seen)")[0] == "OK"
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]
    assert m.create("Project/Alpha")[0] == "OK"
    typ, data = m.list('""', "Project*")
    assert any(b'"Project/Alpha"' in d for d in data)
    assert m.copy("1:2", "Project/Alpha")[0] == "OK"
    typ, data = m.status("Project/Alpha", "(MESSAGES UNSEEN)")
    assert b"MESSAGES 2" in data[0] and b"UNSEEN 1" in data[0]
    typ, data = m.uid("MOVE", "2", "Archive")
    assert typ == "OK"
    typ, data = m.status("Archive", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0]
    assert m.rename("Project/Alpha", "Project/Beta")[0] == "OK"
    assert m.delete("Project/Beta")[0] == "OK"
    typ, data = m.list('""', "Project*")
    assert not any(b"Beta" in (d or b"") for d in data)
    assert m.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"2", b"1"]   # MOVE's EXPUNGE, then ours
    m.logout()


def test_imaplib_imaps_authenticate_plain(srv):
    deliver(srv, USER2, "for two", "text of two")
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx())
    typ, _ = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER2, PASSWORD)).encode())
    assert typ == "OK"
    typ, data = m.select("INBOX")
    assert int(data[0]) == 1
    typ, data = m.uid("FETCH", "1", "(UID RFC822.SIZE BODY[])")
    assert typ == "OK" and b"text of two" in data[0][1]
    size = int(re.search(rb"RFC822\.SIZE (\d+)", data[0][0]).group(1))
    assert size == len(data[0][1])
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0]          # BODY[] set \Seen
    typ, data = m.select("Does/Not/Exist")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    m.logout()
    bad = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx())
    with pytest.raises(imaplib.IMAP4.error):
        bad.login(USER2, "wrong")
    bad.logout()
    assert srv.wait_log(r"event=auth_failed proto=imap .*ip=127\.0\.0\.1")


def test_two_sessions_and_idle(srv):
    for i in range(3):
        deliver(srv, USER, "shared %d" % i)
    a, b = Raw(srv.port("imaps")), Raw(srv.port("imaps"))
    try:
        for c in (a, b):
            assert "OK" in c.cmd("LOGIN %s %s" % (USER, PASSWORD))[1]
        ua, ta = a.cmd("SELECT INBOX")
        n = int([x for x in ua if x.endswith(" EXISTS")][0].split()[1])
        assert n >= 3
        ub, _ = b.cmd("SELECT INBOX")
        assert "* %d EXISTS" % n in ub
        # B flags and expunges message 1
        assert "OK" in b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")[1]
        ub, tb = b.cmd("EXPUNGE")
        assert ub == ["* 1 EXPUNGE"] and "OK" in tb
        # A: no EXPUNGE during FETCH (RFC 3501 7.4.1), message numbers kept
        ua, ta = a.cmd("FETCH %d (UID)" % n)
        assert "OK" in ta and not any("EXPUNGE" in x for x in ua)
        assert any(x.startswith("* %d FETCH" % n) for x in ua)
        # flag change by B reaches A as FETCH, expunge at NOOP
        assert "OK" in b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")[1]
        ua, ta = a.cmd("NOOP")
        # B's message 1 is A's 2 until A hears of the expunge: the FETCH
        # uses the number valid when it is sent, then comes the EXPUNGE
        assert re.match(r"\* 2 FETCH \(FLAGS \(.*\\Flagged", ua[0]), ua
        assert ua[1:] == ["* 1 EXPUNGE"], ua
        # IDLE: a delivery is pushed within a second
        a.n += 1
        a.send("t%d IDLE" % a.n)
        assert a.line().startswith("+ ")
        t0 = time.monotonic()
        deliver(srv, USER, "pushed")
        got = a.line(timeout=5 * tern_harness.SCALE)
        assert got == "* %d EXISTS" % n, got
        assert time.monotonic() - t0 < 1.0 * tern_harness.SCALE
        # an expunge by B is pushed to the IDLE client at once
        assert "OK" in b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")[1]
        assert "OK" in b.cmd("EXPUNGE")[1]
        seen = [a.line(timeout=5 * tern_harness.SCALE)]
        while "EXPUNGE" not in seen[-1]:
            seen.append(a.line(timeout=5 * tern_harness.SCALE))
        assert seen[-1] == "* 1 EXPUNGE", seen
        a.send("DONE")
        assert a.line() == "t%d OK IDLE terminated" % a.n
    finally:
        a.close()
        b.close()


def test_curl_imaps(srv):
    deliver(srv, USER2, "for curl", "curl body line")
    base = "imaps://127.0.0.1:%d/" % srv.port("imaps")
    p = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", base, "-u",
                        "%s:%s" % (USER2, PASSWORD)], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert b'"INBOX"' in p.stdout and b"Trash" in p.stdout
    p = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", base + "INBOX/;UID=2", "-u",
                        "%s:%s" % (USER2, PASSWORD)], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert b"curl body line" in p.stdout
