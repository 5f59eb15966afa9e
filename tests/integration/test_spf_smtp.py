"""SPF on port 25 end to end: a Tern whose dns group points at the test DNS
(nsd, and the harness's responder staying silent for one zone) receives
mail from 127.0.0.1 with smtplib and stores it with one
Authentication-Results field (RFC 8601) below its Received field:

- pass.test publishes "v=spf1 ip4:127.0.0.1 -all": spf=pass smtp.mailfrom;
- fail.test publishes "v=spf1 -all": spf=fail, recorded, the mail accepted;
- the null sender is checked as postmaster@HELO: spf=pass smtp.helo;
- silent.test never answers: 451 4.4.3 at end of data, nothing stored;
- an incoming Authentication-Results field with our authserv-id is removed,
  one with another authserv-id kept;
- with mailauth.spf = false nothing is added (and the forged field stays:
  nothing claims to check);
- BDAT, pipelined, with a second transaction deferred (451);
- submission (authenticated) mail is not checked.
The stored bytes are read from the store's message files."""
import smtplib

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from imapc import tls_ctx
from smtpc import SmtpConn

PASSWORD = "spf-Secret-1"
HOST = tern_harness.HOSTNAME


@pytest.fixture(scope="module")
def dns():
    d = testdns.TestDNS()
    d.zone("pass.test", ['@ TXT "v=spf1 ip4:127.0.0.1 -all"',
                         'mail TXT "v=spf1 ip4:127.0.0.1 -all"'])
    d.zone("fail.test", ['@ TXT "v=spf1 -all"'])
    d.responder("silent.test", "silent")
    with d:
        d.start()
        yield d


def make(dns, name, spf=True):
    s = tern_harness.TernServer(name=name, spf=spf)
    s.add_domain("local.test")
    s.add_user("bob@local.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=1, dnssec=False))
    s.start()
    return s


@pytest.fixture(scope="module")
def srv(dns):
    s = make(dns, "spf")
    yield s
    finish(s)


def send(srv, sender, subject, helo="client.pass.test", extra=""):
    msg = ("%sFrom: %s\r\nTo: bob@local.test\r\nSubject: %s\r\n\r\nbody %s\r\n"
           % (extra, sender or "mailer-daemon@pass.test", subject, subject))
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname=helo, timeout=30) as c:
        c.sendmail(sender, ["bob@local.test"], msg)


def stored(srv, subject):
    found = tern_harness.find_stored(srv, "bob@local.test", "Subject: %s\r\n" % subject)
    assert len(found) == 1, found
    return found[0]


def auth_results(data):
    """The Authentication-Results fields of the header, unfolded, in order."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    fields, cur = [], None
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and cur is not None:
            cur += " " + line.strip()
            continue
        if cur is not None:
            fields.append(cur)
        cur = line
    fields.append(cur)
    return [f for f in fields if f.lower().startswith("authentication-results:")]


def test_pass_below_received(srv):
    send(srv, "alice@pass.test", "spf pass")
    data = stored(srv, "spf pass")
    trace, rest = tern_harness.split_stored(data)
    assert rest.startswith(b"Authentication-Results: %s;\r\n\tspf=pass smtp.mailfrom=alice@pass.test\r\n"
                           % HOST.encode()), data[:400]
    assert auth_results(data) == ["Authentication-Results: %s; spf=pass smtp.mailfrom=alice@pass.test"
                                  % HOST]
    srv.wait_log(r"event=spf ip=127\.0\.0\.1 identity=mailfrom from=alice@pass\.test .*result=pass")


def test_fail_is_recorded_not_refused(srv):
    send(srv, "mallory@fail.test", "spf fail")
    data = stored(srv, "spf fail")
    assert auth_results(data) == ["Authentication-Results: %s; spf=fail smtp.mailfrom=mallory@fail.test"
                                  % HOST]


def test_none_without_record(srv):
    # a name in a served zone without any record: NXDOMAIN, so none
    send(srv, "someone@other.pass.test", "spf none2")
    data = stored(srv, "spf none2")
    assert auth_results(data) == [
        "Authentication-Results: %s; spf=none smtp.mailfrom=someone@other.pass.test" % HOST]


def test_null_sender_uses_helo(srv):
    send(srv, "", "spf helo", helo="mail.pass.test")
    data = stored(srv, "spf helo")
    assert auth_results(data) == ["Authentication-Results: %s; spf=pass smtp.helo=mail.pass.test"
                                  % HOST]


def test_dns_timeout_is_451(srv):
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, "bob@silent.test", "spf silent")
    assert e.value.smtp_code == 451
    assert e.value.smtp_error.startswith(b"4.4.3")
    assert tern_harness.find_stored(srv, "bob@local.test", "Subject: spf silent\r\n") == []
    srv.wait_log(r"from=bob@silent\.test .*result=temperror")


def test_forged_results_removed(srv):
    forged = ("Authentication-Results: %s; spf=pass smtp.mailfrom=mallory@fail.test\r\n"
              "Authentication-Results: (comment)\r\n %s;\r\n dkim=pass header.d=fail.test\r\n"
              "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@fail.test\r\n"
              % (HOST, HOST.upper()))
    send(srv, "mallory@fail.test", "spf forged", extra=forged)
    data = stored(srv, "spf forged")
    assert auth_results(data) == [
        "Authentication-Results: %s; spf=fail smtp.mailfrom=mallory@fail.test" % HOST,
        "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@fail.test"]
    assert b"dkim=pass header.d=fail.test" not in data


def test_bdat_pipelined(srv):
    """CHUNKING, pipelined (raw transcript: smtplib has no BDAT): the check
    waits at the last chunk and the next transaction keeps its order."""
    body = b"From: alice@pass.test\r\nSubject: spf bdat\r\n\r\nchunked\r\n"
    body2 = b"From: x@silent.test\r\nSubject: spf bdat2\r\n\r\nchunked\r\n"
    with SmtpConn(srv.port("smtp")) as c:
        c.expect(None, 220)
        c.expect("EHLO client.pass.test", 250)
        c.send(b"MAIL FROM:<alice@pass.test>\r\nRCPT TO:<bob@local.test>\r\n"
               b"BDAT %d LAST\r\n%s" % (len(body), body) +
               b"MAIL FROM:<x@silent.test>\r\nRCPT TO:<bob@local.test>\r\n"
               b"BDAT %d LAST\r\n%s" % (len(body2), body2) + b"QUIT\r\n")
        codes = [c.reply(timeout=30).code for _ in range(7)]
    assert codes == [250, 250, 250, 250, 250, 451, 221], codes
    data = stored(srv, "spf bdat")
    assert auth_results(data) == ["Authentication-Results: %s; spf=pass smtp.mailfrom=alice@pass.test"
                                  % HOST]
    assert tern_harness.find_stored(srv, "bob@local.test", "Subject: spf bdat2\r\n") == []


def test_submission_not_checked(srv):
    srv.add_user("carol@local.test", PASSWORD)
    msg = "From: carol@local.test\r\nTo: bob@local.test\r\nSubject: spf submission\r\n\r\nhi\r\n"
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), context=tls_ctx(),
                          timeout=30) as c:
        c.login("carol@local.test", PASSWORD)
        c.sendmail("carol@local.test", ["bob@local.test"], msg)
    data = stored(srv, "spf submission")
    assert auth_results(data) == []


def test_switch_off(dns):
    s = make(dns, "spfoff", spf=False)
    try:
        forged = "Authentication-Results: %s; spf=pass smtp.mailfrom=a@silent.test\r\n" % HOST
        send(s, "a@silent.test", "spf off", extra=forged)
        data = stored(s, "spf off")
        assert auth_results(data) == ["Authentication-Results: %s; spf=pass smtp.mailfrom=a@silent.test"
                                      % HOST]
        assert "event=spf " not in s.log()
    finally:
        finish(s)
