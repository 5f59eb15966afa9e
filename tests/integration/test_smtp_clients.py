"""Real SMTP clients against the shared server: Python's smtplib, swaks, and
a small SCRAM-SHA-256 client written here.  Every delivery is checked
byte-for-byte in the store: Tern's trace lines on top (by pattern), then
exactly the bytes that were sent."""
import base64
import hashlib
import hmac
import os
import re
import shutil
import smtplib
import subprocess
import uuid

import pytest

from conftest import USERS
from smtpc import SmtpConn, client_tls_context, dot_stuff, send_message
from tern import split_stored

PW_A = USERS["a@example.test"]
PW_B = USERS["b@example.test"]


def unique():
    return uuid.uuid4().hex[:12]


def make_msg(tag, sender="sender@remote.test", to="a@example.test", body=None, extra=b""):
    body = body if body is not None else b"Hello from the test suite.\r\n.dot line\r\nend\r\n"
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: test %s\r\nMessage-ID: <%s@remote.test>\r\n"
            % (sender.encode(), to.encode(), tag.encode(), tag.encode()) + extra + b"\r\n" + body)


def stored_one(srv, address, tag):
    """The single stored copy in address's INBOX that holds tag."""
    found = [m for m in srv.messages(address) if tag.encode() in m]
    assert len(found) == 1, "%d copies with %s for %s" % (len(found), tag, address)
    return found[0]


def check_copy(data, sent, sender, rcpt):
    trace, body = split_stored(data)
    assert body == sent, "stored bytes differ from the sent message:\n%r\n%r" % (body, sent)
    lines = trace.split(b"\r\n")
    assert lines[0] == b"Return-Path: <%s>" % sender.encode(), lines[0]
    assert re.match(rb"^Delivered-To: <?%s>?$" % re.escape(rcpt.encode()), lines[1]), lines[1]
    assert re.match(rb"^Received: from \S+ ", lines[2]), lines[2]
    assert b"by mail.example.test" in trace, trace
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF in stored copy"
    assert b"\r" not in data.replace(b"\r\n", b""), "bare CR in stored copy"
    return trace


# ---- smtplib ---------------------------------------------------------------

def test_smtplib_mx_plain(shared):
    tag = unique()
    msg = make_msg(tag)
    with smtplib.SMTP("127.0.0.1", shared.port("smtp"), local_hostname="client.test",
                      timeout=15) as s:
        code, _ = s.ehlo()
        assert code == 250
        assert s.has_extn("pipelining") and s.has_extn("starttls")
        assert not s.has_extn("auth")
        refused = s.sendmail("sender@remote.test", ["a@example.test"], msg)
        assert refused == {}
    trace = check_copy(stored_one(shared, "a@example.test", tag), msg,
                       "sender@remote.test", "a@example.test")
    assert b"127.0.0.1" in trace


def test_smtplib_mx_starttls(shared):
    tag = unique()
    msg = make_msg(tag, to="b@example.test")
    with smtplib.SMTP("127.0.0.1", shared.port("smtp"), local_hostname="client.test",
                      timeout=15) as s:
        s.starttls(context=client_tls_context())
        s.ehlo()
        assert not s.has_extn("starttls")
        s.sendmail("sender@remote.test", ["b@example.test"], msg)
    trace = check_copy(stored_one(shared, "b@example.test", tag), msg,
                       "sender@remote.test", "b@example.test")
    assert re.search(rb"TLS|ESMTPS", trace), "Received should say TLS was used: %r" % trace


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_smtplib_submission_auth(shared, mech):
    tag = unique()
    msg = make_msg(tag, sender="a@example.test", to="b@example.test")
    with smtplib.SMTP("127.0.0.1", shared.port("submission"), local_hostname="client.test",
                      timeout=15) as s:
        s.ehlo()
        assert not s.has_extn("auth"), "AUTH offered before TLS on 587"
        s.starttls(context=client_tls_context())
        s.ehlo()
        assert set(s.esmtp_features["auth"].upper().split()) >= {"PLAIN", "LOGIN", "SCRAM-SHA-256"}
        s.user, s.password = "a@example.test", PW_A
        auth = s.auth_plain if mech == "PLAIN" else s.auth_login
        # LOGIN without an initial response exercises both challenges
        code, _ = s.auth(mech, auth, initial_response_ok=(mech == "PLAIN"))
        assert code == 235
        s.sendmail("a@example.test", ["b@example.test"], msg)
    check_copy(stored_one(shared, "b@example.test", tag), msg, "a@example.test", "b@example.test")


def test_smtplib_submissions_465(shared):
    tag = unique()
    msg = make_msg(tag, sender="b@example.test", to="a@example.test")
    with smtplib.SMTP_SSL("127.0.0.1", shared.port("submissions"), local_hostname="client.test",
                          context=client_tls_context(), timeout=15) as s:
        s.login("b@example.test", PW_B)
        s.sendmail("b@example.test", ["a@example.test"], msg)
    check_copy(stored_one(shared, "a@example.test", tag), msg, "b@example.test", "a@example.test")


def test_wrong_password(shared):
    # from its own loopback address, so the per-IP penalty it earns does
    # not slow the other tests down
    with smtplib.SMTP_SSL("127.0.0.1", shared.port("submissions"), local_hostname="client.test",
                          context=client_tls_context(), timeout=30,
                          source_address=("127.0.0.50", 0)) as s:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("a@example.test", "not-the-password")
        assert e.value.smtp_code == 535


def test_smtputf8(shared):
    """A UTF-8 sender local part and a raw UTF-8 Subject with SMTPUTF8."""
    tag = unique()
    msg = ("From: <sënder@remote.test>\r\nTo: <a@example.test>\r\nSubject: grüße %s\r\n\r\n"
           "ünïcödé body\r\n" % tag).encode("utf-8")
    with smtplib.SMTP("127.0.0.1", shared.port("smtp"), local_hostname="client.test",
                      timeout=15) as s:
        s.ehlo()
        assert s.has_extn("smtputf8")
        refused = s.sendmail("sënder@remote.test", ["a@example.test"], msg,
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    check_copy(stored_one(shared, "a@example.test", tag), msg, "sënder@remote.test",
               "a@example.test")


def test_smtputf8_local_user(shared):
    """A user whose own address has a UTF-8 local part (RFC 6531)."""
    addr = "jörg@example.test"
    if addr not in shared.tern("user", "list").stdout:
        p = shared.tern("user", "add", addr, input="utf8-Secret-9\n")
        assert p.returncode == 0, p.stderr
    tag = unique()
    msg = ("From: <x@remote.test>\r\nTo: <%s>\r\nSubject: grüße %s\r\n\r\nbody\r\n"
           % (addr, tag)).encode("utf-8")
    with smtplib.SMTP("127.0.0.1", shared.port("smtp"), local_hostname="client.test",
                      timeout=15) as s:
        refused = s.sendmail("x@remote.test", [addr], msg, mail_options=["SMTPUTF8"])
        assert refused == {}
    check_copy(stored_one(shared, addr, tag), msg, "x@remote.test", addr)


def test_utf8_address_needs_smtputf8(shared):
    with SmtpConn(shared.port("smtp")) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        r = c.cmd("MAIL FROM:<sënder@remote.test>")
        assert r.code in (553, 555, 501), r


def test_multiple_recipients_byte_exact(shared):
    tag = unique()
    rcpts = ["a@example.test", "b@example.test", "c@example.test"]
    msg = make_msg(tag, to="a@example.test", extra=b"Cc: b@example.test, c@example.test\r\n")
    r = send_message(shared.port("smtp"), "multi@remote.test", rcpts, msg)
    assert r.code == 250, r
    for rc in rcpts:
        check_copy(stored_one(shared, rc, tag), msg, "multi@remote.test", rc)


def test_8bit_body(shared):
    tag = unique()
    body = bytes(range(0x80, 0x100)) + b"\r\n" + "naïve café\r\n".encode("latin-1")
    msg = make_msg(tag, body=body, extra=b"Content-Type: text/plain; charset=iso-8859-1\r\n")
    with smtplib.SMTP("127.0.0.1", shared.port("smtp"), local_hostname="client.test",
                      timeout=15) as s:
        s.sendmail("eight@remote.test", ["a@example.test"], msg, mail_options=["BODY=8BITMIME"])
    check_copy(stored_one(shared, "a@example.test", tag), msg, "eight@remote.test", "a@example.test")


def test_null_sender(shared):
    tag = unique()
    msg = make_msg(tag)
    r = send_message(shared.port("smtp"), "", ["a@example.test"], msg)
    assert r.code == 250
    check_copy(stored_one(shared, "a@example.test", tag), msg, "", "a@example.test")


# ---- SCRAM-SHA-256 (RFC 5802, RFC 7677) --------------------------------------

def scram_auth(conn, user, password):
    """Run AUTH SCRAM-SHA-256; returns (final reply, server signature ok)."""
    b64 = lambda b: base64.b64encode(b).decode()
    cnonce = b64(os.urandom(18))
    name = user.replace("=", "=3D").replace(",", "=2C")
    first_bare = "n=%s,r=%s" % (name, cnonce)
    r = conn.cmd("AUTH SCRAM-SHA-256 " + b64(("n,," + first_bare).encode()))
    if r.code != 334:
        return r, False
    server_first = base64.b64decode(r.texts[0]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(cnonce), "server nonce must extend ours"
    salt = base64.b64decode(attrs["s"])
    iters = int(attrs["i"])
    assert iters >= 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_wo_proof = "c=%s,r=%s" % (b64(b"n,,"), attrs["r"])
    auth_msg = ",".join([first_bare, server_first, final_wo_proof]).encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(x ^ y for x, y in zip(client_key, sig))
    r = conn.cmd(b64((final_wo_proof + ",p=" + b64(proof)).encode()))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want_v = "v=" + b64(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
    if r.code == 334:
        got = base64.b64decode(r.texts[0]).decode()
        ok = hmac.compare_digest(got, want_v)
        r = conn.cmd("")
        return r, ok
    return r, None


def test_scram_sha256(shared):
    with SmtpConn(shared.port("submissions"), tls=True) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        r, ok = scram_auth(c, "a@example.test", PW_A)
        assert r.code == 235, r
        assert ok is not False, "server signature did not verify"
        tag = unique()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<c@example.test>", 250)
        c.expect("DATA", 354)
        msg = make_msg(tag, sender="a@example.test", to="c@example.test")
        c.send(dot_stuff(msg) + b".\r\n")
        c.expect(None, 250)
    check_copy(stored_one(shared, "c@example.test", tag), msg, "a@example.test", "c@example.test")


def test_scram_wrong_password(shared):
    with SmtpConn(shared.port("submissions"), tls=True, source="127.0.0.51") as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        r, _ = scram_auth(c, "a@example.test", "wrong-password")
        assert r.code == 535, r


def test_auth_plain_with_initial_response_and_cancel(shared):
    with SmtpConn(shared.port("submissions"), tls=True) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        c.expect("AUTH PLAIN", 334)
        r = c.cmd("*")
        assert r.code == 501, r          # RFC 4954: cancelled exchange
        tok = base64.b64encode(b"\0a@example.test\0" + PW_A.encode()).decode()
        c.expect("AUTH PLAIN", 334)
        c.expect(tok, 235)


# ---- submission sender checks --------------------------------------------------

def submission(shared, user, pw):
    c = SmtpConn(shared.port("submissions"), tls=True)
    c.expect(None, 220)
    c.expect("EHLO client.test", 250)
    tok = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode()).decode()
    c.expect("AUTH PLAIN " + tok, 235)
    return c


def test_sender_own_and_alias_ok(shared):
    with submission(shared, "a@example.test", PW_A) as c:
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<A@Example.Test>", 250)
        c.expect("RSET", 250)
        # sales@ is an alias that reaches a@
        c.expect("MAIL FROM:<sales@example.test>", 250)
        c.expect("RCPT TO:<b@example.test>", 250)
        c.expect("DATA", 354)
        tag = unique()
        msg = make_msg(tag, sender="sales@example.test", to="b@example.test")
        c.send(dot_stuff(msg) + b".\r\n")
        r = c.reply()
        assert r.code == 250, r
    check_copy(stored_one(shared, "b@example.test", tag), msg, "sales@example.test", "b@example.test")


def test_sender_other_refused(shared):
    with submission(shared, "a@example.test", PW_A) as c:
        r = c.cmd("MAIL FROM:<b@example.test>")
        assert r.code == 553 and r.text.startswith("5.7.1"), r
        r = c.cmd("MAIL FROM:<someone@remote.test>")
        assert r.code == 553 and r.text.startswith("5.7.1"), r


def test_header_from_mismatch_refused(shared):
    tag = unique()
    with submission(shared, "a@example.test", PW_A) as c:
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<b@example.test>", 250)
        c.expect("DATA", 354)
        c.send(dot_stuff(make_msg(tag, sender="b@example.test", to="b@example.test")) + b".\r\n")
        r = c.reply()
        assert r.code == 550 and r.text.startswith("5.7.1"), r
        c.expect("NOOP", 250)
    assert not [m for m in shared.messages("b@example.test") if tag.encode() in m]


def test_submission_remote_recipient_queued(shared):
    """An authenticated user's remote recipient is accepted into the
    outbound queue (delivery itself: test_delivery.py)."""
    with submission(shared, "a@example.test", PW_A) as c:
        c.expect("MAIL FROM:<a@example.test>", 250)
        r = c.cmd("RCPT TO:<friend@remote.test>")
        assert r.code == 250, r
        c.expect("DATA", 354)
        c.expect("From: a@example.test\r\nSubject: to the queue\r\n\r\nqueued\r\n.", 250)
    # the queue takes it up (no DNS for remote.test here: deferred or bounced)
    assert shared.wait_log(r"mod=queue event=(deferred|bounced) qid=\w+ rcpt=\"?friend@remote\.test")


def test_mx_refuses_relay_even_after_tls(shared):
    with SmtpConn(shared.port("smtp")) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        c.expect("STARTTLS", 220)
        c.starttls()
        c.expect("EHLO client.test", 250)
        r = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0a@example.test\0" + PW_A.encode()).decode())
        assert r.code >= 500, r
        c.expect("MAIL FROM:<a@example.test>", 250)
        r = c.cmd("RCPT TO:<friend@remote.test>")
        assert r.code == 554 and r.text.startswith("5.7.1") and "relay" in r.text.lower(), r


# ---- address resolution ------------------------------------------------------

def test_catch_all(shared):
    tag = unique()
    msg = make_msg(tag, to="whoever@catchall.test")
    r = send_message(shared.port("smtp"), "x@remote.test", ["whoever@catchall.test"], msg)
    assert r.code == 250
    data = stored_one(shared, "c@example.test", tag)
    _, body = split_stored(data)
    assert body == msg


def test_subaddress(shared):
    tag = unique()
    msg = make_msg(tag, to="a+lists@example.test")
    r = send_message(shared.port("smtp"), "x@remote.test", ["a+lists@example.test"], msg)
    assert r.code == 250
    data = stored_one(shared, "a@example.test", tag)
    trace, body = split_stored(data)
    assert body == msg
    assert re.search(rb"^Delivered-To: <?a(\+lists)?@example\.test>?\r$", trace, re.M), trace


def test_alias_to_two_users(shared):
    tag = unique()
    msg = make_msg(tag, to="list@example.test")
    r = send_message(shared.port("smtp"), "x@remote.test", ["list@example.test"], msg)
    assert r.code == 250
    for u in ("a@example.test", "b@example.test"):
        check_copy(stored_one(shared, u, tag), msg, "x@remote.test", u)
    assert not [m for m in shared.messages("c@example.test") if tag.encode() in m]


def test_too_many_recipients(shared):
    with SmtpConn(shared.port("smtp")) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        c.expect("MAIL FROM:<many@remote.test>", 250)
        c.send("".join("RCPT TO:<r%d@catchall.test>\r\n" % i for i in range(1001)))
        codes = [c.reply() for _ in range(1001)]
        assert all(r.code == 250 for r in codes[:1000]), [r for r in codes[:1000] if r.code != 250][:3]
        assert codes[1000].code == 452 and codes[1000].text.startswith("4.5.3"), codes[1000]
        c.expect("RSET", 250)


# ---- swaks ---------------------------------------------------------------------

SWAKS = shutil.which("swaks")


def swaks(shared, tmp_path, kind, args, sender="sw@remote.test", to="a@example.test"):
    tag = unique()
    # swaks ends the data with CRLF itself: give it no final newline
    text = ("From: <%s>\nTo: <%s>\nSubject: swaks %s\n\nbody line one\n.leading dot\nlast"
            % (sender, to, tag))
    f = tmp_path / "msg.txt"
    f.write_text(text)
    cmd = [SWAKS, "--server", "127.0.0.1:%d" % shared.port(kind), "--ehlo", "client.test",
           "--from", sender, "--to", to, "--data", "@%s" % f, "--timeout", "20"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    sent = text.replace("\n", "\r\n").encode() + b"\r\n"
    check_copy(stored_one(shared, to, tag), sent, sender, to)
    return p.stdout


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_pipeline(shared, tmp_path):
    out = swaks(shared, tmp_path, "smtp", ["--pipeline"])
    assert "PIPELINING" in out


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_starttls(shared, tmp_path):
    out = swaks(shared, tmp_path, "smtp", ["--tls"])
    assert "TLS started" in out


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_auth_plain_submission(shared, tmp_path):
    swaks(shared, tmp_path, "submission",
          ["--tls", "--auth", "PLAIN", "--auth-user", "a@example.test", "--auth-password", PW_A],
          sender="a@example.test", to="b@example.test")


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_tlsc_465(shared, tmp_path):
    swaks(shared, tmp_path, "submissions",
          ["--tlsc", "--auth", "LOGIN", "--auth-user", "b@example.test", "--auth-password", PW_B,
           "--pipeline"],
          sender="b@example.test", to="c@example.test")
