"""IMAP QUOTA (RFC 9208) with real clients: imaplib's getquotaroot and
getquota, curl's custom request, the limits from `tern user quota SIZE
--messages N` enforced on APPEND and COPY with NO [OVERQUOTA], SETQUOTA
refused, and a user without limits reporting no quota root."""
import imaplib
import smtplib
import subprocess

import pytest

import tern as tern_harness
from imapc import tls_ctx
from conftest import finish

PASSWORD = "qu-Secret-1"
LIMITED = "limited@example.test"
FREE = "free@example.test"



@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="quota")
    s.add_domain("example.test")
    s.add_user(LIMITED, PASSWORD)
    s.add_user(FREE, PASSWORD)
    s.tern("user", "quota", LIMITED, "1M", "--messages", "3", check=True)
    s.start()
    with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=30) as c:
        for i in (1, 2):
            c.sendmail("sender@remote.test", [LIMITED, FREE],
                       b"From: sender@remote.test\r\nSubject: quota %d\r\n\r\n%s\r\n"
                       % (i, b"x" * 3000))
    yield s
    finish(s)


def login(srv, user):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx(), timeout=30)
    c.login(user, PASSWORD)
    return c


def test_cli_lists_message_limit(srv):
    out = srv.tern("user", "list", check=True).stdout
    line = [l for l in out.splitlines() if l.startswith(LIMITED)][0]
    assert "quota=1.0M" in line or "quota=1M" in line or "quota=1024K" in line, line
    assert "max_messages=3" in line


def test_getquotaroot_and_getquota(srv):
    c = login(srv, LIMITED)
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK"
    roots, quotas = data
    assert roots in ([b'INBOX ""'], [b'"INBOX" ""']), roots
    # two messages of a little over 3000 bytes: 6 or 7 KiB used of 1024
    q = quotas[0].decode()
    assert q.startswith('"" (STORAGE '), q
    used_kib = int(q.split()[2])
    assert 6 <= used_kib <= 8, q
    assert q.endswith(" 1024 MESSAGE 2 3)"), q
    typ, data = c.getquota('""')
    assert typ == "OK" and data[0].decode() == q
    typ, data = c._simple_command("GETQUOTA", '"other"')
    assert typ == "NO"
    typ, data = c.getquotaroot("NoSuchBox")
    assert typ == "NO"
    c.logout()


def raw_command(srv, user, command):
    """One command over a raw TLS connection (imaplib sends one literal per
    command; MULTIAPPEND needs several); returns the tagged reply."""
    import socket
    with socket.create_connection(("127.0.0.1", srv.port("imaps")), timeout=30) as raw:
        with tls_ctx().wrap_socket(raw) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"l LOGIN %s %s\r\n" % (user.encode(), PASSWORD.encode()))
            while not f.readline().startswith(b"l "):
                pass
            s.sendall(b"t " + command + b"\r\n")
            while True:
                line = f.readline()
                if not line or line.startswith(b"t "):
                    return line


def test_multiappend_all_or_none(srv):
    c = login(srv, LIMITED)
    before = c.status("INBOX", "(MESSAGES)")[1][0]
    # one message of room left: the first of two would fit, the second not,
    # so neither stays (RFC 3502 3)
    reply = raw_command(srv, LIMITED, b"APPEND INBOX {4+}\r\nm1\r\n {4+}\r\nm2\r\n")
    assert reply.startswith(b"t NO [OVERQUOTA]"), reply
    assert c.status("INBOX", "(MESSAGES)")[1][0] == before
    c.logout()


def test_overquota_on_append_and_copy(srv):
    c = login(srv, LIMITED)
    msg = b"From: me@example.test\r\nSubject: appended\r\n\r\nhello\r\n"
    typ, data = c.append("INBOX", None, None, msg)
    assert typ == "OK", data                     # message 3 of 3
    typ, data = c.append("INBOX", None, None, msg)
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
    c.select("INBOX")
    typ, data = c.copy("1", "Archive")
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
    typ, data = c._simple_command("SETQUOTA", '""', "(STORAGE 99999)")
    assert typ == "NO"
    c.logout()


def test_unlimited_user_has_no_root(srv):
    c = login(srv, FREE)
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK"
    assert data[0] in ([b"INBOX"], [b'"INBOX"']), data
    typ, data = c.capability()
    caps = data[0].split()
    for cap in (b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"):
        assert cap in caps
    c.logout()


def test_curl_getquotaroot(srv):
    p = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", "-u",
                        "%s:%s" % (LIMITED, PASSWORD),
                        "imaps://127.0.0.1:%d/" % srv.port("imaps"),
                        "-X", "GETQUOTAROOT INBOX"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert '* QUOTAROOT "INBOX" ""' in p.stdout or '* QUOTAROOT INBOX ""' in p.stdout
    assert '* QUOTA "" (STORAGE ' in p.stdout
