"""DKIM verification on port 25 end to end: a Tern whose dns group points at
the test DNS (nsd holding the keys as SELECTOR._domainkey.DOMAIN TXT records,
and the harness's responder staying silent for one zone) receives mail
from 127.0.0.1 with smtplib, signed in the test by dkimpy (Debian's
python3-dkim) with RSA-2048 and Ed25519 keys made here with openssl, and
stores it with one Authentication-Results field (RFC 8601) holding the spf
clause and one dkim clause per signature:

- RSA-2048 and Ed25519 signatures: dkim=pass header.d=... header.s=...;
- a body altered after signing: dkim=fail;
- a selector without a key record (NXDOMAIN, or a name with an A record
  only): dkim=permerror (the library's word for "no key", docs/dkim.md);
- a key in a zone whose server never answers: dkim=temperror, and the
  message is still accepted (only an SPF temperror defers);
- an unsigned message: dkim=none;
- two signatures: two clauses, topmost first;
- with mailauth.spf = false the field holds the dkim clauses alone.
Everything below the field is checked to be the bytes sent, so the
signatures a mail reader may check again are intact."""
import base64
import os
import re
import shutil
import smtplib
import subprocess
import tempfile

import pytest

import tern as tern_harness
import testdns
from conftest import finish

import dkim  # noqa: E402 (python3-dkim, scripts/deps.sh)

PASSWORD = "dkim-Secret-1"
HOST = tern_harness.HOSTNAME


def txt(record):
    """A TXT record's data as zone-file strings of at most 255 bytes."""
    return " ".join('"%s"' % record[i:i + 255] for i in range(0, len(record), 255))


class Keys:
    """An RSA-2048 and an Ed25519 key made with openssl, in dkimpy's forms,
    with their key records."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tern-dkim-keys-")
        rsa_pem = os.path.join(self.dir, "rsa.pem")
        ed_pem = os.path.join(self.dir, "ed.pem")
        run = lambda *a: subprocess.run(["openssl"] + list(a), check=True,
                                        capture_output=True, timeout=60).stdout
        run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa_pem)
        run("genpkey", "-algorithm", "ED25519", "-out", ed_pem)
        rsa_pub = run("pkey", "-in", rsa_pem, "-pubout", "-outform", "DER")
        ed_pub = run("pkey", "-in", ed_pem, "-pubout", "-outform", "DER")[-32:]
        ed_priv = run("pkey", "-in", ed_pem, "-outform", "DER")[-32:]
        with open(rsa_pem, "rb") as f:
            self.rsa = f.read()
        self.ed = base64.b64encode(ed_priv)
        self.rsa_record = "v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_pub).decode()
        self.ed_record = "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_pub).decode()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def keys():
    return Keys()


@pytest.fixture(scope="module")
def dns(keys):
    d = testdns.TestDNS()
    d.zone("sig.test", ['@ TXT "v=spf1 ip4:127.0.0.1 -all"',
                        "rsa._domainkey TXT %s" % txt(keys.rsa_record),
                        "ed._domainkey TXT %s" % txt(keys.ed_record),
                        "nodata._domainkey A 127.0.0.1"])
    d.zone("other.test", ['@ TXT "v=spf1 ip4:127.0.0.1 -all"',
                          "ed2._domainkey TXT %s" % txt(keys.ed_record)])
    d.responder("silent.test", "silent")
    with d:
        d.start()
        yield d


def make(dns, name, spf=True):
    s = tern_harness.TernServer(name=name, spf=spf, dkim=True)
    s.add_domain("local.test")
    s.add_user("bob@local.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=1, dnssec=False))
    s.start()
    return s


@pytest.fixture(scope="module")
def srv(dns):
    s = make(dns, "dkim")
    yield s
    finish(s)


def message(subject, sender="alice@sig.test"):
    return (b"From: %s\r\nTo: bob@local.test\r\nSubject: %s\r\n"
            b"Date: Sun, 29 Nov 2026 00:30:00 +0000\r\nMessage-ID: <%s@sig.test>\r\n\r\n"
            b"Hello Bob,\r\n\r\nthis is %s.\r\n" % (sender.encode(), subject.encode(),
                                                   subject.replace(" ", ".").encode(),
                                                   subject.encode()))


def sign(msg, keys, selector, domain="sig.test", alg="rsa"):
    key = keys.rsa if alg == "rsa" else keys.ed
    return dkim.sign(msg, selector.encode(), domain.encode(), key,
                     canonicalize=(b"relaxed", b"relaxed"),
                     signature_algorithm=b"rsa-sha256" if alg == "rsa" else b"ed25519-sha256")


def header_b(sig):
    """The first 8 characters of the b= tag of a DKIM-Signature field."""
    m = re.search(rb"[;\s]b=([A-Za-z0-9+/=\s]+)", sig)
    return re.sub(rb"\s", b"", m.group(1))[:8].decode()


def send(srv, data, sender="alice@sig.test", helo="client.sig.test"):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname=helo, timeout=60) as c:
        c.sendmail(sender, ["bob@local.test"], data)


def stored_rest(srv, subject):
    """The stored copy below Tern's trace lines."""
    found = tern_harness.find_stored(srv, "bob@local.test", "Subject: %s\r\n" % subject)
    assert len(found) == 1, found
    return tern_harness.split_stored(found[0])[1]


def field(*clauses):
    """Our Authentication-Results field as stored: one clause a line."""
    return ("Authentication-Results: %s;\r\n\t" % HOST + ";\r\n\t".join(clauses)
            + "\r\n").encode()


def dkim_pass(sig, domain, selector, alg):
    return ("dkim=pass header.d=%s header.i=@%s header.s=%s header.a=%s header.b=\"%s\""
            % (domain, domain, selector, alg, header_b(sig)))


SPF_PASS = "spf=pass smtp.mailfrom=alice@sig.test"


def test_rsa_pass(srv, keys):
    msg = message("dkim rsa")
    sig = sign(msg, keys, "rsa")
    send(srv, sig + msg)
    rest = stored_rest(srv, "dkim rsa")
    assert rest == field(SPF_PASS, dkim_pass(sig, "sig.test", "rsa", "rsa-sha256")) + sig + msg, \
        rest[:600]
    srv.wait_log(r"event=dkim d=sig\.test s=rsa a=rsa-sha256 result=pass")


def test_ed25519_pass(srv, keys):
    msg = message("dkim ed25519")
    sig = sign(msg, keys, "ed", alg="ed25519")
    send(srv, sig + msg)
    rest = stored_rest(srv, "dkim ed25519")
    assert rest == field(SPF_PASS, dkim_pass(sig, "sig.test", "ed", "ed25519-sha256")) + sig + msg, \
        rest[:600]


def test_body_altered_fails(srv, keys):
    msg = message("dkim altered")
    sig = sign(msg, keys, "rsa")
    altered = msg.replace(b"Hello Bob", b"Hello Eve")
    send(srv, sig + altered)
    rest = stored_rest(srv, "dkim altered")
    clause = ("dkim=fail (body hash did not verify) header.d=sig.test header.i=@sig.test "
              "header.s=rsa header.a=rsa-sha256 header.b=\"%s\"" % header_b(sig))
    assert rest == field(SPF_PASS, clause) + sig + altered, rest[:600]


def test_no_key_is_permerror(srv, keys):
    msg = message("dkim nokey")
    sig = sign(msg, keys, "missing")
    send(srv, sig + msg)
    rest = stored_rest(srv, "dkim nokey")
    head = rest.split(b"\r\n\r\n", 1)[0]
    assert rest.startswith(b"Authentication-Results: %s;\r\n\t%s;\r\n\tdkim=permerror ("
                           % (HOST.encode(), SPF_PASS.encode())), rest[:600]
    assert b"header.d=sig.test header.i=@sig.test header.s=missing header.a=rsa-sha256" in head
    assert rest.endswith(sig + msg)


def test_key_name_without_txt_is_permerror(srv, keys):
    msg = message("dkim nodata")
    sig = sign(msg, keys, "nodata")
    send(srv, sig + msg)
    rest = stored_rest(srv, "dkim nodata")
    assert rest.startswith(b"Authentication-Results: %s;\r\n\t%s;\r\n\tdkim=permerror ("
                           % (HOST.encode(), SPF_PASS.encode())), rest[:600]
    assert b"header.s=nodata " in rest.split(b"\r\n\r\n", 1)[0]


def test_silent_key_server_is_temperror_not_deferred(srv, keys):
    msg = message("dkim silent")
    sig = sign(msg, keys, "sel", domain="silent.test")
    send(srv, sig + msg)        # accepted: a DKIM temperror never gives 451
    rest = stored_rest(srv, "dkim silent")
    assert rest.startswith(b"Authentication-Results: %s;\r\n\t%s;\r\n\tdkim=temperror ("
                           % (HOST.encode(), SPF_PASS.encode())), rest[:600]
    assert b"header.d=silent.test" in rest.split(b"\r\n\r\n", 1)[0]
    assert rest.endswith(sig + msg)
    srv.wait_log(r"event=dkim d=silent\.test s=sel a=rsa-sha256 result=temperror")


def test_unsigned_is_none(srv):
    msg = message("dkim unsigned")
    send(srv, msg)
    assert stored_rest(srv, "dkim unsigned") == field(SPF_PASS, "dkim=none") + msg
    srv.wait_log(r"event=dkim result=none")


def test_two_signatures_two_clauses(srv, keys):
    msg = message("dkim two")
    sig1 = sign(msg, keys, "ed2", domain="other.test", alg="ed25519")
    sig2 = sign(sig1 + msg, keys, "rsa")
    send(srv, sig2 + sig1 + msg)
    rest = stored_rest(srv, "dkim two")
    assert rest == field(SPF_PASS, dkim_pass(sig2, "sig.test", "rsa", "rsa-sha256"),
                         dkim_pass(sig1, "other.test", "ed2", "ed25519-sha256")) + sig2 + sig1 + msg, \
        rest[:800]


def test_spf_temperror_still_defers(srv, keys):
    msg = message("dkim spf silent", sender="bob@silent.test")
    sig = sign(msg, keys, "rsa")
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, sig + msg, sender="bob@silent.test")
    assert e.value.smtp_code == 451
    assert tern_harness.find_stored(srv, "bob@local.test", "Subject: dkim spf silent\r\n") == []


def test_dkim_without_spf(dns, keys):
    s = make(dns, "dkimonly", spf=False)
    try:
        msg = message("dkim only")
        sig = sign(msg, keys, "ed", alg="ed25519")
        send(s, sig + msg)
        rest = stored_rest(s, "dkim only")
        assert rest == field(dkim_pass(sig, "sig.test", "ed", "ed25519-sha256")) + sig + msg, \
            rest[:600]
        assert "event=spf " not in s.log()
    finally:
        finish(s)
