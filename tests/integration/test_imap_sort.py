"""IMAP SORT and THREAD (RFC 5256), ESORT (RFC 5267) and SORT=DISPLAY
(RFC 5957), end to end.

Seven messages are delivered by SMTP; the first is expunged so that UIDs
(2..7) differ from sequence numbers (1..6).  The six left form two reply
chains (References / In-Reply-To, and "Fwd:" joined by subject) and one
message with an RFC 2047 subject.  Every expected answer below was worked
out by hand from the headers:

  seq uid  date        from (display)             subject
  1   2    2024-01-01  Zed <zed@x.test>           Project plan
  2   3    2024-01-03  bob@x.test                 Re: Project plan (In-Reply-To 1)
  3   4    2024-01-02  Alice <alice@x.test>       Lunch?
  4   5    2024-01-05  Aaron Dave <dave@x.test>   Re: Re: Project plan (References 1 2)
  5   6    2024-01-04  carol@x.test               Fwd: Lunch?
  6   7    2024-01-06  Erin <erin@x.test>         =?UTF-8?Q?=C3=89lan?= (Élan)

Python's imaplib (sort, thread, and their UID forms), a raw client for
ESORT and the error replies, and curl's custom-request mode."""
import imaplib
import smtplib
import subprocess
import time

import pytest

import tern as tern_harness
from imapc import ImapClient, tls_ctx
from conftest import finish

USER, PASSWORD = "sorter@example.test", "sort-Secret-1"

MESSAGES = [
    ("Zed <zed@x.test>", "amy@y.test", "Project plan", "Mon, 01 Jan 2024 10:00:00 +0000",
     "<p1@t>", None, None),
    ("bob@x.test", "carl@y.test", "Re: Project plan", "Wed, 03 Jan 2024 10:00:00 +0000",
     "<p2@t>", "<p1@t>", None),
    ("Alice <alice@x.test>", "amy@y.test", "Lunch?", "Tue, 02 Jan 2024 10:00:00 +0000",
     "<l1@t>", None, None),
    ("Aaron Dave <dave@x.test>", "amy@y.test", "Re: Re: Project plan",
     "Fri, 05 Jan 2024 10:00:00 +0000", "<p3@t>", "<p1@t>", "<p1@t> <p2@t>"),
    ("carol@x.test", "amy@y.test", "Fwd: Lunch?", "Thu, 04 Jan 2024 10:00:00 +0000",
     "<f1@t>", None, None),
    ("Erin <erin@x.test>", "amy@y.test", "=?UTF-8?Q?=C3=89lan?=",
     "Sat, 06 Jan 2024 10:00:00 +0000", "<e1@t>", None, None),
]


def raw_message(frm, to, subject, date, mid, irt, refs, body):
    h = "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n" % (
        frm, to, subject, date, mid)
    if irt:
        h += "In-Reply-To: %s\r\n" % irt
    if refs:
        h += "References: %s\r\n" % refs
    return (h + "\r\n" + body + "\r\n").encode()


@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="imapsort")
    s.add_domain("example.test")
    s.add_user(USER, PASSWORD)
    s.start()
    with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=30) as c:
        c.sendmail("x@other.test", [USER], b"Subject: expunge me\r\n\r\nbye\r\n")
        for i, m in enumerate(MESSAGES):
            c.sendmail("x@other.test", [USER], raw_message(*m, body="body " + "x" * (7 - i) * 50))
    c = ImapClient(s.port("imaps"), USER, PASSWORD)
    assert c.ok("SELECT INBOX")
    assert c.ok("STORE 1 +FLAGS (\\Deleted)")
    assert c.ok("EXPUNGE")
    c.close()
    yield s
    finish(s)


@pytest.fixture
def imap(srv):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx())
    m.login(USER, PASSWORD)
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK" and data[0] == b"6"
    yield m
    m.logout()


@pytest.fixture
def raw(srv):
    c = ImapClient(srv.port("imaps"), USER, PASSWORD)
    assert c.ok("EXAMINE INBOX")
    yield c
    c.close()


def test_capabilities(imap):
    for cap in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"):
        assert cap in imap.capabilities, cap


def test_imaplib_sort(imap):
    cases = {
        "(SUBJECT)": "6 3 5 1 2 4",          # élan < lunch? < project plan
        "(DATE)": "1 3 2 5 4 6",
        "(REVERSE DATE)": "6 4 5 2 3 1",
        "(ARRIVAL)": "1 2 3 4 5 6",
        "(FROM)": "3 2 5 4 6 1",             # alice bob carol dave erin zed
        "(DISPLAYFROM)": "4 3 2 5 6 1",      # "Aaron Dave" first, bare addresses as written
        "(TO DATE)": "1 3 5 4 6 2",          # amy x5 by date, then carl
        "(SUBJECT REVERSE DATE)": "6 5 3 4 2 1",
    }
    for crit, want in cases.items():
        typ, data = imap.sort(crit, "UTF-8", "ALL")
        assert typ == "OK", (crit, data)
        assert data[0].decode() == want, crit
    typ, data = imap.sort("(DATE)", "US-ASCII", "SUBJECT", "lunch")
    assert typ == "OK" and data[0].decode() == "3 5"


def test_imaplib_sort_arrival_reverse(imap):
    # deliveries may share a second: equal keys stay in sequence order
    # even under REVERSE (RFC 5256 3)
    typ, data = imap.fetch("1:6", "(INTERNALDATE)")
    dates = {}
    for line in data:
        seq = int(line.split()[0])
        dates[seq] = imaplib.Internaldate2tuple(line)
    want = sorted(dates, key=lambda s: (-time.mktime(dates[s]), s))
    typ, data = imap.sort("(REVERSE ARRIVAL)", "UTF-8", "ALL")
    assert typ == "OK" and [int(x) for x in data[0].split()] == want


def test_imaplib_sort_size(imap):
    typ, data = imap.sort("(SIZE)", "UTF-8", "ALL")
    assert typ == "OK"
    order = [int(x) for x in data[0].split()]
    typ, data = imap.fetch("1:6", "(RFC822.SIZE)")
    sizes = {}
    for line in data:
        seq, rest = line.decode().split(" ", 1)
        sizes[int(seq)] = int(rest.split("RFC822.SIZE ")[1].rstrip(")"))
    assert sorted(order) == [1, 2, 3, 4, 5, 6]
    assert order == sorted(order, key=lambda s: (sizes[s], s))


def test_imaplib_uid_sort(imap):
    typ, data = imap.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK" and data[0].decode() == "7 4 6 2 3 5"
    typ, data = imap.uid("SORT", "(REVERSE DATE)", "UTF-8", "UID", "3:6")
    assert typ == "OK" and data[0].decode() == "5 6 3 4"


def test_imaplib_thread(imap):
    typ, data = imap.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data[0].decode() == "(1 2 4)(3 5)(6)"
    typ, data = imap.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert typ == "OK" and data[0].decode() == "(1 (2)(4))(3 5)(6)"
    typ, data = imap.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data[0].decode() == "(2 3 5)(4 6)(7)"
    # only some messages: 2's parent is not among them
    typ, data = imap.thread("REFERENCES", "UTF-8", "2,4,5")
    assert typ == "OK" and data[0].decode() == "(2 4)(5)"


def test_esort(raw):
    untagged, tagged = raw.cmd("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
    assert tagged.startswith("OK")
    assert untagged == [b'* ESEARCH (TAG "t%d") MIN 1 MAX 6 COUNT 6 ALL 1,3,2,5,4,6' % raw.n]
    untagged, tagged = raw.cmd("UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL")
    assert tagged.startswith("OK")
    assert untagged == [b'* ESEARCH (TAG "t%d") UID ALL 7,4,6,2:3,5' % raw.n]
    untagged, tagged = raw.cmd("SORT RETURN () (ARRIVAL) UTF-8 ALL")
    assert untagged == [b'* ESEARCH (TAG "t%d") ALL 1:6' % raw.n]
    untagged, tagged = raw.cmd("SORT RETURN (COUNT) (ARRIVAL) UTF-8 SUBJECT nothing-matches")
    assert untagged == [b'* ESEARCH (TAG "t%d") COUNT 0' % raw.n]
    untagged, tagged = raw.cmd("SORT (ARRIVAL) UTF-8 SUBJECT nothing-matches")
    assert untagged == [b"* SORT"] and tagged.startswith("OK")
    untagged, tagged = raw.cmd("THREAD REFERENCES UTF-8 SUBJECT nothing-matches")
    assert untagged == [b"* THREAD"] and tagged.startswith("OK")


def test_esort_save(raw):
    # RFC 5182 2.4: SAVE with MAX alone keeps the last message in sort order
    untagged, tagged = raw.cmd("SORT RETURN (SAVE MAX) (REVERSE SUBJECT) UTF-8 ALL")
    assert tagged.startswith("OK")
    assert untagged == [b'* ESEARCH (TAG "t%d") MAX 6' % raw.n]
    untagged, tagged = raw.cmd("FETCH $ (UID)")
    assert untagged == [b"* 6 FETCH (UID 7)"], untagged
    # SAVE alone: no untagged answer; "$" then feeds SORT and THREAD
    untagged, tagged = raw.cmd("UID SORT RETURN (SAVE) (DATE) UTF-8 UID 2:4")
    assert untagged == [] and tagged.startswith("OK")
    untagged, tagged = raw.cmd("SORT (REVERSE DATE) UTF-8 $")
    assert untagged == [b"* SORT 2 3 1"], untagged
    untagged, tagged = raw.cmd("THREAD REFERENCES UTF-8 $")
    assert untagged == [b"* THREAD (1 2)(3)"], untagged
    # a failed SORT ... SAVE empties "$"
    untagged, tagged = raw.cmd("SORT RETURN (SAVE) (BOGUS) UTF-8 ALL")
    assert tagged.startswith("BAD")
    untagged, tagged = raw.cmd("SORT (DATE) UTF-8 $")
    assert untagged == [b"* SORT"], untagged


def test_errors(raw):
    for bad in ("SORT (BOGUS) UTF-8 ALL", "SORT (DATE) UTF-8", "SORT DATE UTF-8 ALL",
                "SORT () UTF-8 ALL", "SORT (REVERSE) UTF-8 ALL", "SORT RETURN (FOO) (DATE) UTF-8 ALL",
                "SORT (DATE) UTF-8 NOSUCHKEY", "THREAD FOO UTF-8 ALL", "THREAD REFERENCES UTF-8"):
        untagged, tagged = raw.cmd(bad)
        assert tagged.startswith("BAD"), (bad, tagged)
    for cmd in ("SORT (DATE) KOI8-R ALL", "THREAD REFERENCES ISO-8859-1 ALL"):
        untagged, tagged = raw.cmd(cmd)
        assert tagged.startswith("NO [BADCHARSET (UTF-8 US-ASCII)]"), (cmd, tagged)
    # the session is still fine
    untagged, tagged = raw.cmd("SORT (ARRIVAL) UTF-8 1:2")
    assert untagged == [b"* SORT 1 2"] and tagged.startswith("OK")


def test_not_selected(srv):
    c = ImapClient(srv.port("imaps"), USER, PASSWORD)
    try:
        untagged, tagged = c.cmd("SORT (DATE) UTF-8 ALL")
        assert tagged.startswith("BAD") or tagged.startswith("NO")
    finally:
        c.close()


def test_curl_sort(srv):
    url = "imaps://127.0.0.1:%d/INBOX" % srv.port("imaps")
    for req, want in (("SORT (SUBJECT) UTF-8 ALL", b"* SORT 6 3 5 1 2 4"),
                      ("THREAD REFERENCES UTF-8 ALL", b"* THREAD (1 2 4)(3 5)(6)")):
        p = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", "--url", url, "-u",
                            "%s:%s" % (USER, PASSWORD), "-X", req],
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert want in p.stdout, p.stdout
