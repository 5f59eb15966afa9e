"""IMAP with real clients: mbsync (isync) doing a two-way sync of a mailbox
of 1000+ messages with a local Maildir, flag changes on both sides and a
new message on each side, then convergence (same messages, same flags,
same bytes, nothing lost or duplicated); curl's IMAP client (LIST, FETCH,
custom SEARCH / STATUS / LIST-EXTENDED requests); imaplib with the
LIST-EXTENDED, LIST-STATUS, STATUS=SIZE, ID and ENABLE UTF8=ACCEPT forms;
and the per user+IP connection limit (imap.connections_per_user)."""
import email
import imaplib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import tern as tern_harness
from imapc import tls_ctx
from conftest import finish

PASSWORD = "cl-Secret-1"
SYNC_USER = "sync@example.test"
CL_USER = "cl@example.test"
LIM_USER = "lim@example.test"
# ASan builds run several times slower: a smaller (still realistic) mailbox
COUNT = 300 if os.environ.get("TERN_SANITIZED") else 1000



def imaps(srv, user=CL_USER):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx(), timeout=60)
    c.login(user, PASSWORD)
    return c


def message(i, size_hint=0):
    body = "line %d of the test message body, some words to search\r\n" % i
    body *= 1 + (i % 7) + size_hint
    return ("From: Sender %d <s%d@remote.test>\r\nTo: %s\r\nSubject: sync message %d\r\n"
            "Message-ID: <m%05d@clients.test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n%s"
            % (i, i, SYNC_USER, i, i, body)).encode()


def append_many(srv, user, mailbox, msgs):
    """APPEND every message through one TLS session, pipelined with LITERAL+
    (one write per 100 messages, then read their tagged replies)."""
    raw = socket.create_connection(("127.0.0.1", srv.port("imaps")), timeout=120)
    s = tls_ctx().wrap_socket(raw)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"l LOGIN %s %s\r\n" % (user.encode(), PASSWORD.encode()))
    while not f.readline().startswith(b"l "):
        pass
    # batches of 100 keep the pipelined input under the server's 256 KiB
    # read watermark (larger pipelines over TLS stall: see docs/imap.md)
    for start in range(0, len(msgs), 100):
        batch = msgs[start:start + 100]
        out = bytearray()
        for i, m in enumerate(batch, start):
            out += b"a%d APPEND %s {%d+}\r\n%s\r\n" % (i, mailbox.encode(), len(m), m)
        s.sendall(out)
        oks = 0
        while oks < len(batch):
            line = f.readline()
            assert line, "server closed during APPEND after %d replies" % (start + oks)
            if line.startswith(b"a"):
                assert b" OK " in line, line
                oks += 1
    s.sendall(b"z LOGOUT\r\n")
    s.close()


@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="imapcl")
    s.add_domain("example.test")
    for u in (SYNC_USER, CL_USER, LIM_USER):
        s.add_user(u, PASSWORD)
    s.set("imap.connections_per_user", 3)
    s.start()
    yield s
    finish(s)


# ---- mbsync -------------------------------------------------------------

def maildir_state(root):
    """Message-ID -> (flags, bytes) for every message of a Maildir."""
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(root, sub)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as fh:
                data = fh.read()
            mid = email.message_from_bytes(data)["Message-ID"]
            assert mid not in out, "duplicate in Maildir: %s" % mid
            flags = name.rsplit(":2,", 1)[1] if ":2," in name else ""
            out[mid] = (set(flags), strip_tuid(data))
    return out


def strip_tuid(data):
    """The message as both sides must agree on it: mbsync stores Maildir
    files with LF line ends (the server keeps CRLF) and marks messages it
    propagates with an X-TUID header line."""
    data = data.replace(b"\r\n", b"\n")
    return re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", data)


MAILDIR_FLAGS = {"\\Seen": "S", "\\Flagged": "F", "\\Answered": "R", "\\Draft": "D",
                 "\\Deleted": "T"}


def server_state(srv, user):
    c = imaps(srv, user)
    typ, _ = c.select("INBOX", readonly=True)
    assert typ == "OK"
    typ, data = c.search(None, "ALL")
    total = len(data[0].split())
    data = []
    # 100 at a time: see append_many about large replies over TLS
    for lo in range(1, total + 1, 100):
        typ, part = c.fetch("%d:%d" % (lo, min(lo + 99, total)), "(FLAGS BODY.PEEK[])")
        assert typ == "OK"
        data += part
    c.logout()
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
        mid = email.message_from_bytes(body)["Message-ID"]
        assert mid not in out, "duplicate on the server: %s" % mid
        out[mid] = ({MAILDIR_FLAGS[f] for f in flags if f in MAILDIR_FLAGS},
                    strip_tuid(body))
    return out


def run_mbsync(conf, home):
    p = subprocess.run(["mbsync", "-c", conf, "-a"], capture_output=True, timeout=120,
                       env=dict(os.environ, HOME=home))
    assert p.returncode == 0, (p.stdout + p.stderr).decode("utf-8", "replace")[-3000:]


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
def test_mbsync_two_way(srv):
    t0 = time.monotonic()
    append_many(srv, SYNC_USER, "INBOX", [message(i) for i in range(COUNT)])
    tmp = tempfile.mkdtemp(prefix="tern-mbsync-")
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
PipelineDepth 50

IMAPStore remote
Account tern

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
Sync All
""" % (srv.port("imaps"), SYNC_USER, PASSWORD, os.path.join(srv.dir, "tls", "cert.pem"),
                mail, mail))
        # 1. first sync: everything comes down
        run_mbsync(conf, tmp)
        inbox = os.path.join(mail, "INBOX")
        local = maildir_state(inbox)
        assert len(local) == COUNT
        remote = server_state(srv, SYNC_USER)
        assert len(remote) == COUNT
        for mid, (flags, data) in remote.items():
            assert local[mid][1] == data, "bytes differ for %s" % mid

        # 2. changes on both sides
        # Maildir: 100 messages seen (rename with the S flag), one new message
        names = sorted(n for sub in ("cur", "new") for n in
                       (os.path.join(sub, x) for x in os.listdir(os.path.join(inbox, sub))))
        seen_local = set()
        for rel in names[:100]:
            src = os.path.join(inbox, rel)
            base = os.path.basename(rel)
            stem, _, flags = base.partition(":2,")
            dst = os.path.join(inbox, "cur", "%s:2,%s" % (stem, "".join(sorted(set(flags) | {"S"}))))
            os.rename(src, dst)
            with open(dst, "rb") as fh:
                seen_local.add(email.message_from_bytes(fh.read())["Message-ID"])
        new_local = message(COUNT + 1)
        with open(os.path.join(inbox, "new", "%d.local.tern" % time.time_ns()), "wb") as fh:
            fh.write(new_local)
        # server: 50 flagged with STORE, one new message by APPEND
        c = imaps(srv, SYNC_USER)
        c.select("INBOX")
        typ, _ = c.store("%d:%d" % (COUNT - 49, COUNT), "+FLAGS.SILENT", "(\\Flagged)")
        assert typ == "OK"
        typ, data = c.fetch("%d:%d" % (COUNT - 49, COUNT), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        flagged_remote = {email.message_from_bytes(i[1])["Message-ID"]
                          for i in data if isinstance(i, tuple)}
        assert len(flagged_remote) == 50
        c.logout()
        append_many(srv, SYNC_USER, "INBOX", [message(COUNT + 2)])

        # 3. sync again: converged
        run_mbsync(conf, tmp)
        local = maildir_state(inbox)
        remote = server_state(srv, SYNC_USER)
        assert len(local) == COUNT + 2 and len(remote) == COUNT + 2
        assert set(local) == set(remote)
        for mid in remote:
            assert local[mid][0] == remote[mid][0], "flags differ for %s: %s vs %s" % (
                mid, local[mid][0], remote[mid][0])
            assert local[mid][1] == remote[mid][1], "bytes differ for %s" % mid
        assert {m for m in remote if "S" in remote[m][0]} == seen_local
        assert {m for m in remote if "F" in remote[m][0]} == flagged_remote
        assert remote["<m%05d@clients.test>" % (COUNT + 1)][1] == strip_tuid(new_local)

        # 4. a third sync changes nothing
        run_mbsync(conf, tmp)
        assert maildir_state(inbox) == local
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("mbsync: %d messages in %.1f s" % (COUNT, time.monotonic() - t0))


# ---- curl ---------------------------------------------------------------

def curl(srv, url, *extra):
    p = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", "-u",
                        "%s:%s" % (CL_USER, PASSWORD),
                        "imaps://127.0.0.1:%d/%s" % (srv.port("imaps"), url)] + list(extra),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_curl(srv):
    append_many(srv, CL_USER, "INBOX", [b"Subject: curl one\r\n\r\nfirst curl body\r\n",
                                        b"Subject: curl two\r\n\r\nsecond curl body\r\n"])
    out = curl(srv, "")
    assert b'"INBOX"' in out and b"\\Trash" in out
    out = curl(srv, "INBOX/;UID=2")
    assert b"second curl body" in out
    out = curl(srv, "INBOX", "-X", "SEARCH ALL")
    assert re.search(rb"\* SEARCH 1 2\b", out), out
    out = curl(srv, "INBOX", "-X", "SEARCH SUBJECT two")
    assert re.search(rb"\* SEARCH 2\r?\n", out) or re.search(rb"\* SEARCH 2$", out), out
    out = curl(srv, "", "-X", "STATUS INBOX (MESSAGES SIZE)")
    assert re.search(rb'\* STATUS "?INBOX"? \(MESSAGES 2 SIZE \d+\)', out), out
    out = curl(srv, "", "-X", 'LIST (SPECIAL-USE) "" *')
    assert b"\\Sent" in out and b'"INBOX"' not in out
    out = curl(srv, "", "-X", "EXAMINE INBOX")
    assert b"EXISTS" in out


# ---- imaplib: extended LIST and STATUS -----------------------------------

def test_imaplib_list_status(srv):
    c = imaps(srv)
    assert "LIST-EXTENDED" in c.capabilities and "LIST-STATUS" in c.capabilities
    assert "STATUS=SIZE" in c.capabilities and "UTF8=ACCEPT" in c.capabilities
    assert c.create("Projects/Tern")[0] == "OK"
    assert c.subscribe("Projects/Tern")[0] == "OK"
    typ, data = c._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
    assert typ == "OK"
    typ, data = c._untagged_response(typ, data, "LIST")
    assert any(b'"Projects" ("CHILDINFO" ("SUBSCRIBED"))' in d for d in data), data
    typ, data = c._simple_command("LIST", '""', "(INBOX Projects/*)", "RETURN",
                                  "(SUBSCRIBED STATUS (MESSAGES UIDNEXT SIZE))")
    assert typ == "OK"
    statuses = c.untagged_responses.pop("STATUS", [])
    lists = c.untagged_responses.pop("LIST", [])
    assert any(b"\\Subscribed" in d and b"Projects/Tern" in d for d in lists), lists
    assert any(re.match(rb'"INBOX" \(MESSAGES \d+ UIDNEXT \d+ SIZE \d+\)', d)
               for d in statuses), statuses
    assert any(d.startswith(b'"Projects/Tern" (MESSAGES 0 ') for d in statuses), statuses
    typ, data = c.status("INBOX", "(MESSAGES SIZE DELETED)")
    assert typ == "OK" and re.search(rb"SIZE \d+", data[0]), data
    typ, data = c.xatom("ID", '("name" "imaplib")')
    typ, data = c._untagged_response(typ, data, "ID")
    assert b'"name" "Tern"' in data[0], data
    typ, data = c.xatom("CREATE", '"Archive/2024"', "(USE (\\Archive))")
    assert typ == "OK", data
    # UTF-8 names after ENABLE UTF8=ACCEPT; the same mailbox in modified
    # UTF-7 for a client that did not enable it
    typ, data = c.enable("UTF8=ACCEPT")
    assert typ == "OK"
    assert c.create('"Ünïcode"')[0] == "OK"
    typ, data = c.list('""', '"Ün*"')
    assert typ == "OK" and "Ünïcode" in data[0].decode("utf-8"), data
    c.logout()
    c = imaps(srv)
    typ, data = c.list('""', "&ANw-*")
    assert typ == "OK" and b'"&ANw-n&AO8-code"' in data[0], data
    c.logout()


# ---- the per user+IP connection limit ------------------------------------

def test_connections_per_user(srv):
    held = [imaps(srv, LIM_USER) for _ in range(3)]
    extra = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx(), timeout=30)
    with pytest.raises(imaplib.IMAP4.error) as e:
        extra.login(LIM_USER, PASSWORD)
    assert "LIMIT" in str(e.value)
    # another user from the same address is not affected
    other = imaps(srv, CL_USER)
    other.logout()
    # a slot frees when a session ends
    held.pop().logout()
    deadline = time.monotonic() + 5
    while True:
        try:
            extra.login(LIM_USER, PASSWORD)
            break
        except imaplib.IMAP4.error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    extra.logout()
    for c in held:
        c.logout()
