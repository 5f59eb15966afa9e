"""OBJECTID (RFC 8474), METADATA (RFC 5464) and PREVIEW (RFC 8970) with
real clients: imaplib checks that EMAILID survives COPY and MOVE, that
MAILBOXID survives RENAME, that a reply shares its parent's THREADID, and
reads and writes annotations; curl reads an annotation back."""
import imaplib
import re
import smtplib
import subprocess

import pytest

import tern as tern_harness
from imapc import tls_ctx
from conftest import finish

# imaplib knows only the commands of its own table
for _name in ("GETMETADATA", "SETMETADATA", "MOVE"):
    imaplib.Commands.setdefault(_name, ("AUTH", "SELECTED"))

PASSWORD = "oi-Secret-1"
USER = "objects@example.test"



@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="objectid")
    s.add_domain("example.test")
    s.add_user(USER, PASSWORD)
    s.start()
    with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=30) as c:
        c.sendmail("a@remote.test", [USER],
                   b"From: a@remote.test\r\nSubject: plan\r\nMessage-ID: <p1@remote.test>\r\n"
                   b"Content-Type: text/html\r\n\r\n<p>Hello &amp; <b>welcome</b></p>\r\n")
        c.sendmail("b@remote.test", [USER],
                   b"From: b@remote.test\r\nSubject: Re: plan\r\nMessage-ID: <p2@remote.test>\r\n"
                   b"In-Reply-To: <p1@remote.test>\r\nReferences: <p1@remote.test>\r\n\r\n"
                   b"Sounds good.\r\n")
        c.sendmail("c@remote.test", [USER],
                   b"From: c@remote.test\r\nSubject: other\r\nMessage-ID: <o1@remote.test>\r\n"
                   b"\r\nUnrelated.\r\n")
    yield s
    finish(s)


def login(srv):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx(), timeout=30)
    c.login(USER, PASSWORD)
    return c


def fetch_ids(c, seq):
    typ, data = c.fetch(seq, "(EMAILID THREADID)")
    assert typ == "OK", data
    m = re.search(rb"EMAILID \(([A-Za-z0-9_-]+)\) THREADID \(([A-Za-z0-9_-]+)\)", data[0])
    assert m, data
    return m.group(1).decode(), m.group(2).decode()


def mailboxid(c, name):
    typ, data = c.status(name, "(MAILBOXID)")
    assert typ == "OK", data
    return re.search(rb"MAILBOXID \(([A-Za-z0-9_-]+)\)", data[0]).group(1).decode()


def test_threads_and_previews(srv):
    c = login(srv)
    c.select("INBOX")
    e1, t1 = fetch_ids(c, "1")
    e2, t2 = fetch_ids(c, "2")
    e3, t3 = fetch_ids(c, "3")
    assert t1 == t2 != t3
    assert len({e1, e2, e3}) == 3
    typ, data = c.search(None, "THREADID", t1)
    assert data[0].split() == [b"1", b"2"]
    typ, data = c.fetch("1:2", "(PREVIEW)")
    assert b'PREVIEW "Hello & welcome"' in data[0], data
    assert b'PREVIEW "Sounds good."' in data[1], data
    c.logout()


def test_emailid_survives_copy_and_move(srv):
    c = login(srv)
    c.select("INBOX")
    e3, t3 = fetch_ids(c, "3")
    c.create("Kept")
    assert c.copy("3", "Kept")[0] == "OK"
    c.select("Kept")
    assert fetch_ids(c, "1") == (e3, t3)
    typ, _ = c._simple_command("MOVE", "1", "INBOX")
    assert typ == "OK"
    c.select("INBOX")
    typ, data = c.search(None, "EMAILID", e3)
    assert len(data[0].split()) == 2      # the original and the moved copy
    c.logout()


def test_mailboxid_survives_rename(srv):
    c = login(srv)
    c.create("Before")
    before = mailboxid(c, "Before")
    assert before != mailboxid(c, "INBOX")
    assert c.rename("Before", "After")[0] == "OK"
    assert mailboxid(c, "After") == before
    c.delete("After")
    c.create("Before")
    assert mailboxid(c, "Before") != before    # never reused
    c.logout()


def getmetadata(c, mailbox, entry):
    typ, data = c._simple_command("GETMETADATA", mailbox, entry)
    assert typ == "OK", data
    return c._untagged_response(typ, data, "METADATA")[1]


def test_metadata_with_imaplib_and_curl(srv):
    c = login(srv)
    typ, data = c._simple_command("SETMETADATA", "INBOX", '(/private/comment "for curl")')
    assert typ == "OK", data
    got = getmetadata(c, "INBOX", "/private/comment")
    assert got == [b'"INBOX" (/private/comment "for curl")'], got
    c.logout()
    # curl prints only untagged replies named like the command: read its
    # protocol trace (-v) for the METADATA reply
    p = subprocess.run(["curl", "-v", "-sS", "-k", "--max-time", "20", "-u",
                        "%s:%s" % (USER, PASSWORD),
                        "imaps://127.0.0.1:%d/" % srv.port("imaps"),
                        "-X", "GETMETADATA INBOX /private/comment"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert '< * METADATA "INBOX" (/private/comment "for curl")' in p.stderr, p.stderr
