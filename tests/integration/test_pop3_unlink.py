"""POP3 QUIT and the deferred unlink of the deleted messages' files
(src/store/unlink.c): the +OK to QUIT comes once the deletions are
committed, an IMAP session sees them as EXPUNGE, and the files are removed
afterwards in the background.  With the unlink thread held back
(TERN_STORE_UNLINK_PAUSE=1), the server is killed with SIGKILL between the
commit and the unlink: no message is visible before or after the restart,
and the restart removes the stray files listed in the crash journal
(dir/unlink/)."""
import imaplib
import os
import time

import pytest

import tern as tern_harness
from conftest import finish
from test_pop3 import PASSWORD, USER, body, deliver, login, tls_ctx


def journals(srv):
    d = os.path.join(srv.data, "unlink")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def wait_for(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.fixture
def srv():
    s = tern_harness.TernServer(name="pop3-unlink")
    s.add_domain("example.test")
    s.add_user(USER, PASSWORD)
    yield s
    finish(s)


def test_quit_then_background_unlink(srv):
    srv.start()
    deliver(srv, USER, 6, body, sessions=2)
    rows = srv.message_rows(USER)
    assert len(rows) == 6 and all(os.path.exists(r[2]) for r in rows)
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    imap.starttls(ssl_context=tls_ctx())
    imap.login(USER, PASSWORD)
    assert imap.select("INBOX")[1] == [b"6"]
    p = login(srv)
    for i in range(1, 5):
        p.dele(i)
    assert p.quit().startswith(b"+OK")
    # committed when QUIT answered: the rows are gone, IMAP sees EXPUNGE
    assert [r[0] for r in srv.message_rows(USER)] == [rows[4][0], rows[5][0]]
    typ, _ = imap.noop()
    assert typ == "OK"
    expunged = imap.response("EXPUNGE")[1]
    assert expunged is not None and len([x for x in expunged if x]) == 4
    imap.logout()
    # and the files follow shortly
    assert wait_for(lambda: not any(os.path.exists(r[2]) for r in rows[:4]))
    assert all(os.path.exists(r[2]) for r in rows[4:])
    # this process's journal, emptied once its files are gone
    names = journals(srv)
    assert len(names) == 1
    assert wait_for(lambda: os.path.getsize(os.path.join(srv.data, "unlink", names[0])) == 0)


def test_kill9_between_commit_and_unlink(srv):
    srv.start(env={"TERN_STORE_UNLINK_PAUSE": "1"})
    deliver(srv, USER, 5, body, sessions=2)
    rows = srv.message_rows(USER)
    assert len(rows) == 5
    p = login(srv)
    for i in range(1, 4):
        p.dele(i)
    assert p.quit().startswith(b"+OK")
    # committed: the messages are gone from the index ...
    assert [r[0] for r in srv.message_rows(USER)] == [rows[3][0], rows[4][0]]
    # ... but the unlink thread is held back: the files and the journal stay
    assert all(os.path.exists(r[2]) for r in rows)
    names = journals(srv)
    assert len(names) == 1
    with open(os.path.join(srv.data, "unlink", names[0])) as f:
        listed = f.read().split()
    assert sorted(listed) == sorted(os.path.basename(r[2]) for r in rows[:3])

    srv.kill9_all()
    assert all(os.path.exists(r[2]) for r in rows[:3])     # the crash left them
    srv.start()
    # no message came back, and the restart removed the stray files
    p = login(srv)
    assert p.stat()[0] == 2
    p.quit()
    assert not any(os.path.exists(r[2]) for r in rows[:3])
    assert all(os.path.exists(r[2]) for r in rows[3:])
    assert names[0] not in journals(srv)
    assert "event=unlink_journal_recovered" in open(srv.logfile).read()
