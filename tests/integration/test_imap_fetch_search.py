"""IMAP FETCH sections, BINARY, SEARCH over the full-text index, ESEARCH,
CONDSTORE and QRESYNC, end to end.

A multipart message with a quoted-printable ISO-8859-1 text part, a base64
attachment holding NUL bytes, an embedded message/rfc822 (itself multipart
with a base64 UTF-8 part) and a part with an unknown transfer encoding is
delivered by SMTP; FETCH output is compared byte for byte with what RFC
9051 6.4.5 and RFC 3516 say it must be.  Every SEARCH key is checked with
a matching and a non-matching message.  Two sessions check CONDSTORE
(CHANGEDSINCE sees the other session's flag change) and QRESYNC (VANISHED
(EARLIER) on reselect, VANISHED instead of EXPUNGE)."""
import base64
import imaplib
import re
import smtplib

import pytest

import tern as tern_harness
from imapc import ImapClient, tls_ctx
from conftest import finish

PASSWORD = "fs-Secret-1"
USER = "fs@example.test"          # the FETCH / SEARCH mailbox
USER_CS = "cs@example.test"       # CONDSTORE / QRESYNC

ATTACH = bytes(range(256)) * 3    # binary, with NUL bytes
EMB_TEXT = "embedded secret word: Grüße".encode("utf-8")

PART1_BODY = b"Caf=E9 cr=E8me unique-qp-word\r\nsecond line=\r\n joined\r\n"
PART1_MIME = (b"Content-Type: text/plain; charset=iso-8859-1\r\n"
              b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
ATTACH_B64 = b"\r\n".join(base64.encodebytes(ATTACH).split(b"\n")).rstrip(b"\r\n") + b"\r\n"
PART2_MIME = (b"Content-Type: application/octet-stream; name=\"blob.bin\"\r\n"
              b"Content-Disposition: attachment; filename=\"blob.bin\"\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n")
EMB_HEADER = (b"From: Inner Sender <inner@example.org>\r\n"
              b"To: inner-rcpt@example.org\r\n"
              b"Subject: inner subject\r\n"
              b"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\n"
              b"MIME-Version: 1.0\r\n"
              b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n")
EMB_P1_MIME = (b"Content-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n")
EMB_P1_BODY = base64.b64encode(EMB_TEXT) + b"\r\n"
EMB_P2_MIME = b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
EMB_P2_BODY = b"<p>html alternative</p>\r\n"
EMB_BODY = (b"--inner\r\n" + EMB_P1_MIME + EMB_P1_BODY + b"\r\n--inner\r\n" + EMB_P2_MIME +
            EMB_P2_BODY + b"\r\n--inner--\r\n")
EMBEDDED = EMB_HEADER + EMB_BODY
PART3_MIME = b"Content-Type: message/rfc822\r\n\r\n"
PART4_MIME = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-rot13\r\n\r\n"
PART4_BODY = b"uryyb\r\n"

TOP_HEADER = (b"From: Alice Example <alice@example.org>\r\n"
              b"To: Bob Example <bob@example.org>\r\n"
              b"Cc: carol@example.org\r\n"
              b"Bcc: dave@example.org\r\n"
              b"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n"
              b"Date: Wed, 15 Mar 2023 23:30:00 -0500\r\n"
              b"X-Tracking: alpha-bravo\r\n"
              b"MIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n")
TOP_BODY = (b"preamble\r\n--outer\r\n" + PART1_MIME + PART1_BODY +
            b"\r\n--outer\r\n" + PART2_MIME + ATTACH_B64 +
            b"\r\n--outer\r\n" + PART3_MIME + EMBEDDED +
            b"\r\n--outer\r\n" + PART4_MIME + PART4_BODY +
            b"\r\n--outer--\r\n")
MULTI = TOP_HEADER + TOP_BODY

# message 2: plain, no Date field (SENT* use the internal date), base64 body
PLAIN = (b"From: zed@other.test\r\n"
         b"To: yann@other.test\r\n"
         b"Subject: weekly report\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\n" +
         base64.b64encode("numbers are up: naïve growth".encode("utf-8")) + b"\r\n")


def Client(port, user):
    return ImapClient(port, user, PASSWORD)


@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="imapfs")
    s.add_domain("example.test")
    s.add_user(USER, PASSWORD)
    s.add_user(USER_CS, PASSWORD)
    s.start()
    with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=30) as c:
        c.sendmail("alice@example.org", [USER], MULTI)
        c.sendmail("zed@other.test", [USER], PLAIN)
        for i in range(3):
            c.sendmail("x@other.test", [USER_CS], b"Subject: cs %d\r\n\r\nbody\r\n" % i)
    yield s
    finish(s)


@pytest.fixture
def fs(srv):
    c = Client(srv.port("imaps"), USER)
    assert c.ok("EXAMINE INBOX")
    yield c
    c.close()


def fetch1(c, items, seq="1"):
    untagged, tagged = c.cmd("FETCH %s %s" % (seq, items))
    assert tagged.startswith("OK"), tagged
    assert len(untagged) == 1, untagged
    return untagged[0]


def lit(data):
    return b"{%d}\r\n" % len(data) + data


# ---- FETCH ----

def test_fetch_parts(fs):
    assert fetch1(fs, "BODY.PEEK[1]") == b"* 1 FETCH (BODY[1] " + lit(PART1_BODY) + b")"
    assert fetch1(fs, "BODY.PEEK[1.MIME]") == b"* 1 FETCH (BODY[1.MIME] " + lit(PART1_MIME) + b")"
    assert fetch1(fs, "BODY.PEEK[2]") == b"* 1 FETCH (BODY[2] " + lit(ATTACH_B64) + b")"
    assert fetch1(fs, "BODY.PEEK[3]") == b"* 1 FETCH (BODY[3] " + lit(EMBEDDED) + b")"
    assert fetch1(fs, "BODY.PEEK[3.HEADER]") == b"* 1 FETCH (BODY[3.HEADER] " + lit(EMB_HEADER) + b")"
    assert fetch1(fs, "BODY.PEEK[3.TEXT]") == b"* 1 FETCH (BODY[3.TEXT] " + lit(EMB_BODY) + b")"
    assert fetch1(fs, "BODY.PEEK[3.1]") == b"* 1 FETCH (BODY[3.1] " + lit(EMB_P1_BODY) + b")"
    assert fetch1(fs, "BODY.PEEK[3.2.MIME]") == b"* 1 FETCH (BODY[3.2.MIME] " + lit(EMB_P2_MIME) + b")"
    assert fetch1(fs, "BODY.PEEK[4]") == b"* 1 FETCH (BODY[4] " + lit(PART4_BODY) + b")"
    # no such part, and HEADER of a part that is not a message
    assert fetch1(fs, "BODY.PEEK[9]") == b"* 1 FETCH (BODY[9] NIL)"
    assert fetch1(fs, "BODY.PEEK[1.HEADER]") == b"* 1 FETCH (BODY[1.HEADER] NIL)"


def test_fetch_header_fields_and_partial(fs):
    assert fetch1(fs, "BODY.PEEK[HEADER.FIELDS (subject X-TRACKING)]") == (
        b"* 1 FETCH (BODY[HEADER.FIELDS (subject X-TRACKING)] " +
        lit(b"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nX-Tracking: alpha-bravo\r\n\r\n") +
        b")")
    assert fetch1(fs, "BODY.PEEK[3.HEADER.FIELDS (To)]") == (
        b"* 1 FETCH (BODY[3.HEADER.FIELDS (To)] " + lit(b"To: inner-rcpt@example.org\r\n\r\n") +
        b")")
    not_fields = b"".join(l + b"\r\n" for l in EMB_HEADER.split(b"\r\n")[:-2]
                          if not l.startswith((b"From:", b"Date:", b"Content-Type:",
                                               b"MIME-Version:"))) + b"\r\n"
    assert fetch1(fs, "BODY.PEEK[3.HEADER.FIELDS.NOT (From Date Content-Type MIME-Version)]") == (
        b"* 1 FETCH (BODY[3.HEADER.FIELDS.NOT (From Date Content-Type MIME-Version)] " +
        lit(not_fields) + b")")
    assert fetch1(fs, "BODY.PEEK[1]<5.9>") == b"* 1 FETCH (BODY[1]<5> " + lit(PART1_BODY[5:14]) + b")"
    assert fetch1(fs, "BODY.PEEK[1]<100000.5>") == b"* 1 FETCH (BODY[1]<100000> {0}\r\n)"
    # RFC822.* (rev1) and BODY[] agree on the whole message
    whole = fetch1(fs, "BODY.PEEK[]")
    size = int(re.search(rb"RFC822\.SIZE (\d+)", fetch1(fs, "RFC822.SIZE")).group(1))
    assert whole.endswith(MULTI + b")") and b"{%d}" % size in whole
    hdr = fetch1(fs, "RFC822.HEADER")
    assert hdr.endswith(TOP_HEADER + b")") and hdr.startswith(b"* 1 FETCH (RFC822.HEADER {")


def test_fetch_binary(fs):
    assert fetch1(fs, "BINARY.PEEK[2]") == b"* 1 FETCH (BINARY[2] ~" + lit(ATTACH) + b")"
    assert fetch1(fs, "BINARY.SIZE[2]") == b"* 1 FETCH (BINARY.SIZE[2] %d)" % len(ATTACH)
    qp = "Café crème unique-qp-word\r\nsecond line joined\r\n".encode("latin-1")
    assert fetch1(fs, "BINARY.PEEK[1]") == b"* 1 FETCH (BINARY[1] " + lit(qp) + b")"
    assert fetch1(fs, "BINARY.PEEK[3.1]<0.8>") == b"* 1 FETCH (BINARY[3.1]<0> " + lit(EMB_TEXT[:8]) + b")"
    assert fetch1(fs, "(BINARY.SIZE[3.1] BINARY.SIZE[1])") == (
        b"* 1 FETCH (BINARY.SIZE[3.1] %d BINARY.SIZE[1] %d)" % (len(EMB_TEXT), len(qp)))
    untagged, tagged = fs.cmd("FETCH 1 BINARY.PEEK[4]")
    assert untagged == [] and tagged.startswith("NO [UNKNOWN-CTE]")
    untagged, tagged = fs.cmd("FETCH 1 BINARY.PEEK[1.HEADER]")
    assert tagged.startswith("BAD")


def test_append_literal8(srv):
    c = Client(srv.port("imaps"), USER_CS)
    try:
        data = b"Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\nnul\x00byte\r\n"
        c.s.sendall(b"a1 APPEND Drafts ~{%d}\r\n" % len(data))
        assert c.response().startswith(b"+")
        c.s.sendall(data + b"\r\n")
        assert c.response().startswith(b"a1 OK")
        assert c.ok("SELECT Drafts")
        assert fetch1(c, "BINARY.PEEK[1]") == b"* 1 FETCH (BINARY[1] ~" + lit(b"nul\x00byte\r\n") + b")"
    finally:
        c.close()


def test_imaplib_search_and_fetch_part(srv):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx())
    try:
        m.login(USER, PASSWORD)
        m.select("INBOX", readonly=True)
        typ, data = m.search(None, "BODY", "unique-qp")
        assert typ == "OK" and data[0].split() == [b"1"]
        typ, data = m.uid("SEARCH", "SUBJECT", "weekly")
        assert typ == "OK" and data[0].split() == [b"2"]
        typ, data = m.fetch("1", "(BODY.PEEK[1])")
        assert typ == "OK" and data[0][1] == PART1_BODY
        assert "ESEARCH" in m.capabilities and "BINARY" in m.capabilities
        assert "CONDSTORE" in m.capabilities and "QRESYNC" in m.capabilities
    finally:
        m.logout()


# ---- SEARCH: every key, one message matching and one not ----

SEARCHES = [
    # text keys through the index: decoded (QP/Latin-1, base64, RFC 2047), case-insensitive
    ("FROM alice", "1"), ("FROM ZED@other", "2"),
    ("TO bob", "1"), ("TO yann", "2"),
    ("CC carol", "1"), ("CC nobody", ""),
    ("BCC dave", "1"), ("BCC carol", ""),
    ("SUBJECT grüße", "1"), ("SUBJECT \"AUS KÖLN\"", "1"), ("SUBJECT weekly", "2"),
    ("HEADER X-Tracking bravo", "1"), ("HEADER X-Tracking \"\"", "1"),
    ("HEADER Subject report", "2"),
    ("BODY café", "1"), ("BODY CRÈME", "1"), ("BODY naïve", "2"),
    ("BODY \"secret word\"", "1"), ("BODY nothing-like-this", ""),
    ("TEXT alpha-bravo", "1"), ("TEXT growth", "2"), ("TEXT up", "2"),
    ("NOT BODY café", "2"), ("OR SUBJECT weekly FROM alice", "1 2"),
    # Date: 15 Mar 2023 23:30 -0500 is the 15th as written (the 16th in UTC);
    # message 2 has no Date and uses its internal date (now)
    ("SENTON 15-Mar-2023", "1"), ("SENTON 16-Mar-2023", ""),
    ("SENTBEFORE 16-Mar-2023", "1"), ("SENTBEFORE 15-Mar-2023", ""),
    ("SENTSINCE 16-Mar-2023", "2"), ("SENTSINCE 15-Mar-2023", "1 2"),
    ("BEFORE 1-Jan-2000", ""), ("SINCE 1-Jan-2000", "1 2"),
    ("LARGER 2000", "1"), ("SMALLER 2000", "2"),
    ("UID 2", "2"), ("2", "2"), ("ALL", "1 2"),
    ("UNSEEN", "1 2"), ("SEEN", ""), ("UNFLAGGED", "1 2"), ("FLAGGED", ""),
    ("UNANSWERED", "1 2"), ("ANSWERED", ""), ("UNDELETED", "1 2"), ("DELETED", ""),
    ("UNDRAFT", "1 2"), ("DRAFT", ""), ("KEYWORD $x", ""), ("UNKEYWORD $x", "1 2"),
    ("OLD", "1 2"), ("NEW", ""), ("RECENT", ""),
    ("MODSEQ 1", "1 2 (MODSEQ #)"), ("MODSEQ 100000", ""),
    ("CHARSET UTF-8 SUBJECT grüße", "1"), ("CHARSET US-ASCII FROM alice", "1"),
]


@pytest.mark.parametrize("key,want", SEARCHES, ids=[k for k, _ in SEARCHES])
def test_search_key(fs, key, want):
    untagged, tagged = fs.cmd("SEARCH " + key)
    assert tagged == "OK SEARCH completed", tagged
    got = [u for u in untagged if u.startswith(b"* SEARCH")]
    assert len(got) == 1
    pat = re.escape(("* SEARCH " + want).strip()).replace("\\#", r"\d+").replace("#", r"\d+")
    assert re.fullmatch(pat.encode(), got[0]), (key, got[0])


def test_search_badcharset_and_esearch(fs):
    _, tagged = fs.cmd("SEARCH CHARSET KOI8-R SUBJECT x")
    assert tagged.startswith("NO [BADCHARSET (UTF-8 US-ASCII)]")
    untagged, tagged = fs.cmd("UID SEARCH RETURN (MIN MAX COUNT ALL) ALL")
    assert untagged == [b'* ESEARCH (TAG "t%d") UID MIN 1 MAX 2 COUNT 2 ALL 1:2' % fs.n]
    untagged, _ = fs.cmd("SEARCH RETURN (COUNT) BODY nothing-like-this")
    assert untagged == [b'* ESEARCH (TAG "t%d") COUNT 0' % fs.n]
    untagged, _ = fs.cmd("SEARCH RETURN () TEXT growth")
    assert untagged == [b'* ESEARCH (TAG "t%d") ALL 2' % fs.n]


# ---- CONDSTORE / QRESYNC with two sessions ----

def status_of(untagged, code):
    for u in untagged:
        m = re.search(rb"\[" + code.encode() + rb" (\d+)\]", u)
        if m:
            return int(m.group(1))
    raise AssertionError("no %s in %r" % (code, untagged))


def test_condstore_qresync_two_sessions(srv):
    a = Client(srv.port("imaps"), USER_CS)
    b = Client(srv.port("imaps"), USER_CS)
    try:
        untagged, tagged = a.cmd("SELECT INBOX (CONDSTORE)")
        assert tagged.startswith("OK [READ-WRITE]")
        uidvalidity = status_of(untagged, "UIDVALIDITY")
        modseq0 = status_of(untagged, "HIGHESTMODSEQ")
        assert b.ok("SELECT INBOX")
        # B changes a flag; A sees it through CHANGEDSINCE, with its MODSEQ
        untagged, tagged = b.cmd("STORE 2 +FLAGS (\\Flagged)")
        assert tagged == "OK STORE completed"
        untagged, tagged = a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % modseq0)
        assert tagged == "OK FETCH completed"
        fetches = [u for u in untagged if b" FETCH " in u and b"MODSEQ" in u]
        assert len(fetches) == 1 and re.match(rb"\* 2 FETCH \(FLAGS \(\\Flagged( \\Recent)?\) MODSEQ \((\d+)\)\)", fetches[0]), untagged
        modseq1 = int(re.search(rb"MODSEQ \((\d+)\)", fetches[0]).group(1))
        assert modseq1 > modseq0
        # UNCHANGEDSINCE: message 2 changed after modseq0, so it is MODIFIED
        untagged, tagged = a.cmd("STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Answered)" % modseq0)
        assert tagged == "OK [MODIFIED 2] STORE completed", tagged
        assert any(re.match(rb"\* 1 FETCH \(FLAGS \(\\Answered.*\) MODSEQ \(\d+\)\)", u) for u in untagged)
        untagged, _ = a.cmd("SEARCH MODSEQ %d" % (modseq1 + 1))
        assert any(re.match(rb"\* SEARCH 1 \(MODSEQ \d+\)", u) for u in untagged), untagged

        # QRESYNC: B expunges message 3; A (QRESYNC) gets VANISHED, not EXPUNGE
        # ENABLE is an authenticated-state command (RFC 9051 6.3.1)
        assert a.ok("UNSELECT")
        untagged, _ = a.cmd("ENABLE QRESYNC")
        assert b"* ENABLED QRESYNC" in untagged
        assert a.ok("SELECT INBOX")
        untagged, _ = a.cmd("NOOP")
        modseq2 = max([modseq1] + [int(x) for u in untagged for x in re.findall(rb"MODSEQ \((\d+)\)", u)])
        untagged, _ = a.cmd("FETCH 1:* (MODSEQ)")
        modseq2 = max(int(re.search(rb"MODSEQ \((\d+)\)", u).group(1)) for u in untagged if b"FETCH" in u)
        assert b.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
        untagged, tagged = b.cmd("EXPUNGE")
        assert untagged == [b"* 3 EXPUNGE"] and tagged == "OK EXPUNGE completed"
        untagged, _ = a.cmd("NOOP")
        assert b"* VANISHED 3" in untagged and not any(b"EXPUNGE" in u for u in untagged), untagged
        # reselect from A's cache state: VANISHED (EARLIER) and the changed flags
        untagged, tagged = a.cmd("SELECT INBOX (QRESYNC (%d %d 1:3))" % (uidvalidity, modseq0))
        assert tagged.startswith("OK [READ-WRITE]")
        assert untagged[0] == b"* OK [CLOSED] Previous mailbox closed"
        assert b"* VANISHED (EARLIER) 3" in untagged, untagged
        assert any(re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", u) for u in untagged), untagged
        assert any(re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)", u) for u in untagged), untagged
        untagged, _ = a.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity, modseq2))
        assert b"* VANISHED (EARLIER) 3" in untagged
        assert not any(b" FETCH " in u for u in untagged), untagged
        # UID FETCH ... (CHANGEDSINCE n VANISHED)
        untagged, tagged = a.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % modseq0)
        assert tagged == "OK UID FETCH completed"
        assert untagged[0] == b"* VANISHED (EARLIER) 3", untagged
        assert len([u for u in untagged if b"FETCH" in u]) == 2
        # QRESYNC with another UIDVALIDITY: a plain select
        untagged, _ = a.cmd("SELECT INBOX (QRESYNC (%d 1))" % (uidvalidity + 1))
        assert not any(b"VANISHED" in u or b"FETCH" in u for u in untagged)
    finally:
        a.close()
        b.close()
