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
- mail without ARC fields gets no arc clause (and DMARC as before)."""
import base64
import os
import shutil
import smtplib
import subprocess
import tempfile

import pytest

import tern as tern_harness
import testdns
from conftest import finish

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
