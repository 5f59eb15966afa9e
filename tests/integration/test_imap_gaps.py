"""IMAP behaviours that need two sessions or values a transcript cannot
capture (transcripts-imap/gap-*.t hold the single-session cases):

- STATUS RECENT counts the messages no SELECT has claimed yet, so another
  session sees new mail as recent until a SELECT takes it (as Dovecot);
- STORE (UNCHANGEDSINCE n) sends the current FLAGS and MODSEQ of every
  message it skipped ([MODIFIED set]) as untagged FETCH, .SILENT or not
  (RFC 7162 3.1.3)."""
import re
import smtplib

import pytest

import tern as tern_harness
from imapc import ImapClient
from conftest import finish

PASSWORD = "gap-Secret-1"
USER_RECENT = "recent@example.test"
USER_UNCH = "unch@example.test"


def Client(port, user):
    return ImapClient(port, user, PASSWORD)


@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="imapgap")
    s.add_domain("example.test")
    s.add_user(USER_RECENT, PASSWORD)
    s.add_user(USER_UNCH, PASSWORD)
    s.start()
    with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=30) as c:
        for i in range(2):
            c.sendmail("x@other.test", [USER_RECENT], b"Subject: r %d\r\n\r\nbody\r\n" % i)
        for i in range(3):
            c.sendmail("x@other.test", [USER_UNCH], b"Subject: u %d\r\n\r\nbody\r\n" % i)
    yield s
    finish(s)


def status_recent(c, mailbox="INBOX"):
    untagged, tagged = c.cmd("STATUS %s (RECENT)" % mailbox)
    assert tagged == "OK STATUS completed", tagged
    m = re.match(rb"\* STATUS \S+ \(RECENT (\d+)\)$", untagged[-1])
    assert m, untagged
    return int(m.group(1))


def modseq_of(untagged, seq):
    for u in untagged:
        m = re.match(rb"\* %d FETCH \(.*MODSEQ \((\d+)\)" % seq, u)
        if m:
            return int(m.group(1))
    raise AssertionError("no MODSEQ for %d in %r" % (seq, untagged))


def test_status_recent_other_session(srv):
    a = Client(srv.port("imaps"), USER_RECENT)
    b = Client(srv.port("imaps"), USER_RECENT)
    try:
        # nobody selected INBOX yet: both delivered messages are recent
        assert status_recent(b) == 2
        # A's SELECT claims them: B no longer sees them as recent
        untagged, tagged = a.cmd("SELECT INBOX")
        assert tagged.startswith("OK [READ-WRITE]")
        assert b"* 2 RECENT" in untagged
        assert status_recent(b) == 0
        assert status_recent(a) == 2
        # new mail while A has INBOX selected: recent for B's STATUS until A
        # takes it with its next command
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as c:
            c.sendmail("x@other.test", [USER_RECENT], b"Subject: r new\r\n\r\nbody\r\n")
        untagged, _ = b.cmd("STATUS INBOX (MESSAGES RECENT)")
        m = re.match(rb"\* STATUS \"?INBOX\"? \(MESSAGES (\d+) RECENT (\d+)\)$", untagged[-1])
        assert m, untagged
        # the delivery is committed before the SMTP 250: STATUS sees it, and
        # A has not run a command since, so it is still unclaimed
        assert m.groups() == (b"3", b"1"), untagged
        untagged, _ = a.cmd("NOOP")
        assert b"* 3 EXISTS" in untagged and b"* 3 RECENT" in untagged, untagged
        assert status_recent(b) == 0
        assert status_recent(a) == 3
    finally:
        a.close()
        b.close()


def test_unchangedsince_reports_modified_flags(srv):
    a = Client(srv.port("imaps"), USER_UNCH)
    b = Client(srv.port("imaps"), USER_UNCH)
    try:
        untagged, tagged = a.cmd("SELECT INBOX (CONDSTORE)")
        assert tagged.startswith("OK [READ-WRITE]")
        assert b.ok("SELECT INBOX")
        untagged, _ = a.cmd("FETCH 1:3 (MODSEQ)")
        base = max(modseq_of(untagged, n) for n in (1, 2, 3))
        # B flags message 2 and 3; A has not seen it yet
        assert b.ok("STORE 2:3 +FLAGS (\\Flagged)")
        untagged, tagged = a.cmd("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)" % base)
        assert tagged == "OK [MODIFIED 2:3] STORE completed", tagged
        # message 1 was stored: .SILENT leaves only its MODSEQ
        assert any(re.match(rb"\* 1 FETCH \(MODSEQ \(\d+\)\)$", u) for u in untagged), untagged
        # messages 2 and 3 were skipped: their current flags and modseq
        for seq in (2, 3):
            hits = [u for u in untagged if u.startswith(b"* %d FETCH" % seq)]
            assert hits, untagged
            assert re.match(rb"\* %d FETCH \(FLAGS \(\\Flagged( \\Recent)?\) MODSEQ \((\d+)\)\)$"
                            % seq, hits[-1]), untagged
            assert modseq_of(hits, seq) > base
            assert not any(b"\\Seen" in h for h in hits), hits
        # UID STORE: UIDs in both the FETCH and [MODIFIED]
        untagged, tagged = a.cmd("UID STORE 1:3 (UNCHANGEDSINCE %d) -FLAGS (\\Seen)" % base)
        assert tagged.startswith("OK [MODIFIED 1:3] UID STORE completed"), tagged
        for seq in (1, 2, 3):
            assert any(re.match(rb"\* %d FETCH \(UID %d FLAGS \(.*\) MODSEQ \(\d+\)\)$"
                                % (seq, seq), u) for u in untagged), untagged
        # message 1 really is \Seen (the second STORE changed nothing)
        untagged, _ = a.cmd("FETCH 1 (FLAGS)")
        assert any(b"\\Seen" in u for u in untagged), untagged
    finally:
        a.close()
        b.close()
