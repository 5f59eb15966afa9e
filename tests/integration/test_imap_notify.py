"""NOTIFY (RFC 5465): one session sets its notifications, another session
(and SMTP delivery) changes things; the first must receive, without
sending any command, EXISTS/EXPUNGE/FETCH for the selected mailbox,
STATUS for other mailboxes, LIST for mailbox creation, renaming and
deletion and for subscription changes; NOTIFY NONE stops them; errors
(BADEVENT, unpaired events, bad filters) are answered as the RFC says."""
import re
import smtplib

import pytest

import tern as tern_harness
from conftest import finish
from imapc import ImapClient

PASSWORD = "nt-Secret-1"
USER = "notify@example.test"


@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="notify")
    s.add_domain("example.test")
    s.add_user(USER, PASSWORD)
    s.start()
    yield s
    finish(s)


def client(srv):
    c = ImapClient(srv.port("imaps"), USER, PASSWORD)
    c.s.settimeout(10 * tern_harness.SCALE)
    return c


def wait_for(c, pattern):
    """Read unsolicited responses until one matches pattern (bounded by the
    socket timeout); returns it."""
    rx = re.compile(pattern)
    for _ in range(50):
        r = c.response()
        if rx.search(r):
            return r
    raise AssertionError("no response matching %r" % pattern)


def deliver(srv, subject):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
        s.sendmail("x@remote.test", [USER],
                   ("From: x@remote.test\r\nSubject: %s\r\n\r\nhi\r\n" % subject).encode())


def test_selected_and_other_mailboxes(srv):
    watcher, actor = client(srv), client(srv)
    assert actor.ok("CREATE Lists")
    assert actor.ok("APPEND Lists {5+}\r\nhello")
    watcher.cmd("SELECT INBOX")
    untagged, tagged = watcher.cmd(
        "NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge FlagChange)) "
        "(PERSONAL (MessageNew MessageExpunge MailboxName SubscriptionChange))")
    assert tagged.startswith("OK"), tagged
    # STATUS for every other mailbox with message events, not for INBOX
    assert any(re.match(rb'\* STATUS "?Lists"? \(MESSAGES 1 ', u) for u in untagged), untagged
    assert not any(b'STATUS "INBOX"' in u for u in untagged)
    # new mail in the selected mailbox: EXISTS at once, no command sent
    deliver(srv, "one")
    wait_for(watcher, rb"^\* 1 EXISTS$")
    # a flag change by the other session: FETCH FLAGS
    actor.cmd("SELECT INBOX")
    assert actor.ok("STORE 1 +FLAGS (\\Flagged)")
    wait_for(watcher, rb"^\* 1 FETCH \(.*FLAGS \(.*\\Flagged")
    # another mailbox: STATUS
    assert actor.ok("APPEND Lists {5+}\r\nagain")
    wait_for(watcher, rb'^\* STATUS "?Lists"? \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2\)')
    # expunge in the selected mailbox: EXPUNGE at once (SELECTED, not -DELAYED)
    assert actor.ok("STORE 1 +FLAGS (\\Deleted)")
    assert actor.ok("EXPUNGE")
    wait_for(watcher, rb"^\* 1 EXPUNGE$")
    # mailbox names and subscriptions
    assert actor.ok("CREATE Projects")
    wait_for(watcher, rb'^\* LIST \(\) "/" "?Projects"?$')
    assert actor.ok("RENAME Projects Work")
    wait_for(watcher, rb'^\* LIST \(\) "/" "?Work"? \("OLDNAME" \("?Projects"?\)\)$')
    assert actor.ok("SUBSCRIBE Work")
    wait_for(watcher, rb'^\* LIST \(\\Subscribed\) "/" "?Work"?$')
    assert actor.ok("UNSUBSCRIBE Work")
    wait_for(watcher, rb'^\* LIST \(\) "/" "?Work"?$')
    assert actor.ok("DELETE Work")
    wait_for(watcher, rb'^\* LIST \(\\NonExistent\) "/" "?Work"?$')
    # NOTIFY NONE: nothing more arrives
    assert watcher.ok("NOTIFY NONE")
    assert actor.ok("APPEND Lists {5+}\r\nquiet")
    untagged, tagged = watcher.cmd("NOOP")
    assert tagged.startswith("OK")
    assert not any(b"STATUS" in u for u in untagged), untagged
    watcher.close()
    actor.close()


def test_mailboxes_filter_only_names_its_mailbox(srv):
    watcher, actor = client(srv), client(srv)
    assert actor.ok("CREATE Watched")
    assert actor.ok("CREATE Ignored")
    assert watcher.ok("NOTIFY SET (MAILBOXES Watched (MessageNew MessageExpunge))")
    assert actor.ok("APPEND Ignored {1+}\r\nx")
    assert actor.ok("APPEND Watched {1+}\r\ny")
    r = wait_for(watcher, rb"^\* STATUS ")
    assert b"Watched" in r and b"Ignored" not in r, r
    watcher.close()
    actor.close()


def test_errors(srv):
    c = client(srv)
    _, tagged = c.cmd("NOTIFY SET (PERSONAL (AnnotationChange))")
    assert tagged.startswith("NO [BADEVENT (MessageNew MessageExpunge FlagChange"), tagged
    _, tagged = c.cmd("NOTIFY SET (PERSONAL (MessageNew))")
    assert tagged.startswith("BAD"), tagged
    _, tagged = c.cmd("NOTIFY SET (PERSONAL (FlagChange))")
    assert tagged.startswith("BAD"), tagged
    _, tagged = c.cmd("NOTIFY SET (SELECTED (MailboxName))")
    assert tagged.startswith("NO [BADEVENT"), tagged
    _, tagged = c.cmd("NOTIFY SET (ELSEWHERE (MessageNew MessageExpunge))")
    assert tagged.startswith("BAD"), tagged
    _, tagged = c.cmd("NOTIFY SET (SELECTED (MessageNew (UID) MessageExpunge))")
    assert tagged.startswith("NO [BADEVENT"), tagged
    _, tagged = c.cmd("NOTIFY")
    assert tagged.startswith("BAD"), tagged
    untagged, tagged = c.cmd("CAPABILITY")
    assert b" NOTIFY" in untagged[0]
    c.close()
