"""ARC on port 25 end to end (docs/arc.md): Tern instances whose dns group
points at the test DNS (nsd) receive, from 127.0.0.1 with smtplib, mail
whose From domain (author.test, p=reject) fails DMARC because a mailing
list (lists.test) resent it; the list sealed it with ARC, in the test, with
dkimpy (Debian's python3-dkim, dkim.arc_sign).

- without lists.test in mailauth.arc_trusted_sealers: 550 5.7.1, nothing
  stored, the ARC pass logged;
- with it: stored in INBOX with arc=pass header.oldest-pass=0
  smtp.remote-ip=127.0.0.1, dmarc=fail (... dis=NONE) and the policy.dmarc
  override note, event=arc_override logged;
- with it, but the body changed after sealing: arc=fail, rejected;
- mail without ARC fields gets no arc clause (and DMARC as before);
- sealing: a Tern forwarding an alias (local.test, key from `tern dkim
  keygen`) to another Tern adds its ARC set (i=2 above the list's, i=1 on
  unsealed mail), which dkimpy's arc_verify passes; a chain that failed
  here is forwarded unsealed;
- resealing after the 8BITMIME downgrade: an 8-bit message from the list
  to an alias whose target's server does not offer 8BITMIME (a small
  SMTP peer here) leaves converted to 7 bits, with Tern's set made again
  (i=2, cv=pass, the same ARC-Authentication-Results), and dkimpy's
  arc_verify passes it."""
import base64
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from outbound import SevenBitPeer

import dkim  # noqa: E402 (python3-dkim with python3-authres, scripts/deps.sh)

PASSWORD = "arc-Secret-1"
HOST = tern_harness.HOSTNAME
LIST_SPF = '@ TXT "v=spf1 ip4:127.0.0.1 -all"'


def txt(record):
    return " ".join('"%s"' % record[i:i + 255] for i in range(0, len(record), 255))


@pytest.fixture(scope="module")
def key():
    d = tempfile.mkdtemp(prefix="tern-arc-key-")
    try:
        pem = os.path.join(d, "rsa.pem")
        run = lambda *a: subprocess.run(["openssl"] + list(a), check=True,
                                        capture_output=True, timeout=60).stdout
        run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem)
        pub = run("pkey", "-in", pem, "-pubout", "-outform", "DER")
        with open(pem, "rb") as f:
            priv = f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return priv, "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()


@pytest.fixture(scope="module")
def dns(key):
    d = testdns.TestDNS()
    d.zone("author.test", ['_dmarc TXT "v=DMARC1; p=reject"'])
    d.zone("lists.test", [LIST_SPF, "arc._domainkey TXT %s" % txt(key[1])])
    with d:
        d.start()
        yield d


def make(dns, name, extra=""):
    s = tern_harness.TernServer(name=name, spf=True, dkim=True, dmarc=True)
    s.add_domain("local.test")
    s.add_user("bob@local.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=1, dnssec=False) + "\n" + extra)
    s.start()
    return s


@pytest.fixture(scope="module")
def strict(dns):
    s = make(dns, "arc-strict")
    yield s
    finish(s)


@pytest.fixture(scope="module")
def trusting(dns):
    s = make(dns, "arc-trust", 'mailauth = {\n  arc_trusted_sealers = [ "Lists.Test" ];\n};\n')
    yield s
    finish(s)


def message(subject):
    return (b"From: Alice <alice@author.test>\r\nTo: list@lists.test\r\n"
            b"Subject: %s\r\nDate: Sun, 29 Nov 2026 01:00:00 +0000\r\n"
            b"Message-ID: <%s@author.test>\r\n\r\n"
            b"Hello list,\r\n\r\nthis is %s.\r\n" % (subject.encode(),
                                                    subject.replace(" ", ".").encode(),
                                                    subject.encode()))


def seal(msg, key):
    """What lists.test does: record its own results, then seal (i=1)."""
    msg = b"Authentication-Results: lists.test; arc=none; spf=pass smtp.mailfrom=author.test\r\n" + msg
    return b"".join(dkim.arc_sign(msg, b"arc", b"lists.test", key[0], b"lists.test")) + msg


def send(srv, data):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname="mail.lists.test",
                      timeout=60) as c:
        c.sendmail("bounces@lists.test", ["bob@local.test"], data)


def send_refused(srv, data):
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, data)
    return e.value.smtp_code, e.value.smtp_error.decode()


def stored(srv, subject):
    found = tern_harness.find_stored(srv, "bob@local.test", "Subject: %s\r\n" % subject, "INBOX")
    assert len(found) == 1, found
    return tern_harness.split_stored(found[0])[1]


def nothing_stored(srv, subject):
    for mbox in ("INBOX", "Junk"):
        assert tern_harness.find_stored(srv, "bob@local.test", "Subject: %s\r\n" % subject,
                                        mbox) == []


def clauses_of(rest):
    head = rest.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("Authentication-Results: %s;\r\n\t" % HOST), head[:300]
    value = head.split("\r\n\t", 1)[1]
    out = []
    for ln in value.split("\r\n"):
        out.append(ln.lstrip("\t").rstrip(";"))
        if not ln.endswith(";"):
            break
    return out


def test_sealed_rejected_without_trust(strict, key):
    msg = seal(message("arc untrusted"), key)
    code, text = send_refused(strict, msg)
    assert code == 550 and "author.test" in text, text
    nothing_stored(strict, "arc untrusted")
    strict.wait_log(r"event=arc result=pass oldest_pass=0 sealer=lists\.test")
    strict.wait_log(r"event=dmarc domain=author\.test result=fail policy=reject disposition=reject")
    assert "event=arc_override" not in strict.log()


def test_sealed_delivered_with_trust(trusting, key):
    msg = seal(message("arc trusted"), key)
    send(trusting, msg)
    rest = stored(trusting, "arc trusted")
    clauses = clauses_of(rest)
    assert clauses[0] == "spf=pass smtp.mailfrom=bounces@lists.test", clauses
    assert clauses[1] == "dkim=none", clauses
    assert clauses[2] == "arc=pass header.oldest-pass=0 smtp.remote-ip=127.0.0.1", clauses
    assert clauses[3] == ("dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=author.test "
                          "policy.dmarc=none (ARC override: trusted sealer lists.test)"), clauses
    assert len(clauses) == 4
    assert rest.endswith(msg)
    trusting.wait_log(r"event=arc_override domain=author\.test sealer=lists\.test policy=reject")
    trusting.wait_log(r"event=dmarc domain=author\.test result=fail policy=reject disposition=none")


def test_broken_chain_rejected_with_trust(trusting, key):
    msg = seal(message("arc broken"), key).replace(b"this is arc broken.", b"this is arc broken!")
    code, text = send_refused(trusting, msg)
    assert code == 550, text
    nothing_stored(trusting, "arc broken")
    trusting.wait_log(r"event=arc result=fail oldest_pass=0 sealer=lists\.test "
                      r"reason=\"?ARC-Message-Signature i=1: body hash did not verify")


def test_no_chain_no_clause(trusting):
    msg = message("arc none").replace(b"alice@author.test", b"alice@lists.test")
    send(trusting, msg)
    clauses = clauses_of(stored(trusting, "arc none"))
    assert not any(c.startswith("arc=") for c in clauses), clauses
    assert clauses[-1].startswith("dmarc=none"), clauses


# ---- sealing what Tern forwards ----

LINE = re.compile(r'^(\S+)\. IN TXT \( (.*) \)$')


@pytest.fixture(scope="module")
def final():
    """Where the forwarded mail ends: a plain Tern for remote.test."""
    s = tern_harness.TernServer(name="arc-final")
    s.add_domain("remote.test")
    s.add_user("carol@remote.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def seven():
    p = SevenBitPeer()
    yield p
    p.close()


@pytest.fixture(scope="module")
def forwarder(dns, final, seven):
    """Tern for local.test with a DKIM key and an alias forwarding to
    carol@remote.test (and one to x@seven.test, no 8BITMIME); trusts
    lists.test's seals."""
    s = tern_harness.TernServer(name="arc-fwd", spf=True, dkim=True, dmarc=True)
    s.add_domain("local.test")
    s.add_user("bob@local.test", PASSWORD)
    p = s.tern("dkim", "keygen", "local.test")
    assert p.returncode == 0, p.stderr
    records = {}
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        if m:
            records[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    assert any("k=rsa" in v for v in records.values()), p.stdout
    s.add_alias("fwd@local.test", "carol@remote.test")
    s.add_alias("fwd8@local.test", "x@seven.test")
    s.set("srs.domain", "local.test")
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=1, dnssec=False) + "\n")
        f.write('mailauth = {\n  arc_trusted_sealers = [ "lists.test" ];\n};\n')
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  routes = ( { domain = \"remote.test\"; host = \"127.0.0.1\"; port = %d; },\n"
                "             { domain = \"seven.test\"; host = \"127.0.0.1\"; port = %d; } );\n"
                "};\n" % (final.port("smtp"), seven.port))
    s.start()
    yield s, records
    finish(s)


def forwarded(final, subject):
    marker = "Subject: %s\r\n" % subject
    deadline = time.time() + 30
    while time.time() < deadline:
        found = tern_harness.find_stored(final, "carol@remote.test", marker, "INBOX")
        if found:
            return tern_harness.split_stored(found[0])[1]
        time.sleep(0.3)
    raise AssertionError("not forwarded: " + subject)


def test_forwarded_mail_is_sealed(forwarder, final, key):
    srv, records = forwarder
    # mail from a list (already sealed, i=1) to the alias: Tern adds i=2
    msg = seal(message("arc forward"), key)
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname="mail.lists.test",
                      timeout=60) as c:
        c.sendmail("bounces@lists.test", ["fwd@local.test"], msg)
    got = forwarded(final, "arc forward")
    assert b"ARC-Seal: i=2;" in got, srv.log_tail(60)
    assert b"ARC-Authentication-Results: i=2; " + HOST.encode() + b";" in got, got[:1500]
    assert b"arc=pass header.oldest-pass=0" in got.split(b"ARC-Message-Signature: i=2", 1)[1] \
        .split(b"\r\n\r\n", 1)[0]
    all_records = dict(records)
    all_records["arc._domainkey.lists.test"] = key[1]

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return all_records.get(name.rstrip("."), "").encode()
    # dkimpy verifies the chain as it left Tern (the final hop's own
    # fields removed: everything from our ARC-Seal down)
    sent = got[got.index(b"ARC-Seal: i=2;"):]
    res = dkim.arc_verify(sent, dnsfunc=dnsfunc)
    assert res[0] == b"pass", res
    srv.wait_log(r"event=arc_sealed domain=local\.test")


def test_forwarded_unsealed_mail_gets_first_set(forwarder, final):
    srv, records = forwarder
    msg = (b"From: Dave <dave@lists.test>\r\nTo: fwd@local.test\r\nSubject: arc first\r\n"
           b"Message-ID: <first@lists.test>\r\n\r\nplain mail\r\n")
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname="mail.lists.test",
                      timeout=60) as c:
        c.sendmail("dave@lists.test", ["fwd@local.test"], msg)
    got = forwarded(final, "arc first")
    sent = got[got.index(b"ARC-Seal: i=1;"):]
    assert b"cv=none" in sent.split(b"\r\n\r\n", 1)[0]

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return records.get(name.rstrip("."), "").encode()
    res = dkim.arc_verify(sent, dnsfunc=dnsfunc)
    assert res[0] == b"pass", res


def test_failed_chain_not_sealed(forwarder, final, key):
    srv, _ = forwarder
    msg = seal(message("arc unsealable").replace(b"alice@author.test", b"dave@lists.test"), key)
    msg = msg.replace(b"this is arc unsealable.", b"this is arc unsealable!")
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname="mail.lists.test",
                      timeout=60) as c:
        c.sendmail("dave@lists.test", ["fwd@local.test"], msg)
    got = forwarded(final, "arc unsealable")
    assert b"\tarc=fail (ARC-Message-Signature i=1: body hash did not verify)" in got
    assert b"ARC-Seal: i=2;" not in got
    srv.wait_log(r"event=arc_seal_skipped domain=local\.test reason=chain_not_verified")


def test_8bit_forward_resealed_after_downgrade(forwarder, seven, key):
    srv, records = forwarder
    msg = message("arc eight").replace(
        b"Hello list,\r\n\r\nthis is arc eight.\r\n",
        "Bonjour la liste,\r\n\r\nun caf\u00e9 cr\u00e8me (arc eight).\r\n".encode())
    msg = msg.replace(b"\r\n\r\n", b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
                      b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", 1)
    msg = seal(msg, key)
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname="mail.lists.test",
                      timeout=60) as c:
        c.sendmail("bounces@lists.test", ["fwd8@local.test"], msg,
                   mail_options=["BODY=8BITMIME"])
    deadline = time.time() + 30
    got = None
    while got is None and time.time() < deadline:
        got = next((m for m in seven.messages if b"Subject: arc eight\r\n" in m), None)
        time.sleep(0.2)
    assert got is not None, srv.log_tail(60)
    assert all(b < 0x80 for b in got), "not converted"
    assert re.search(rb"(?im)^Content-Transfer-Encoding: quoted-printable", got), got[:3000]
    # Tern's set, made again on top: the same instance and cv, one of each
    assert got.startswith(b"ARC-Seal: i=2;"), got[:500]
    head = got.split(b"\r\n\r\n", 1)[0]
    assert head.count(b"ARC-Seal: i=2;") == 1 and head.count(b"ARC-Message-Signature: i=2;") == 1
    assert b"cv=pass;" in head.split(b"ARC-Message-Signature:", 1)[0]
    aar = re.search(rb"ARC-Authentication-Results: i=2; ([^\r]*(?:\r\n[ \t][^\r]*)*)", head)
    assert aar and aar.group(1).startswith(HOST.encode() + b";"), head[:2000]
    assert b"arc=pass header.oldest-pass=0" in aar.group(1)
    all_records = dict(records)
    all_records["arc._domainkey.lists.test"] = key[1]

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return all_records.get(name.rstrip("."), "").encode()
    res = dkim.arc_verify(got, dnsfunc=dnsfunc)
    assert res[0] == b"pass", res
    # the list's AMS covered the 8-bit body: only the newest must verify
    # (RFC 8617 5.2), and dkimpy reports the older one as not valid
    assert [r["ams-valid"] for r in res[1] if r["instance"] == 1] == [False], res
    srv.wait_log(r"event=arc_resealed id=\S+ domain=local\.test instance=2 cv=pass")
