"""DMARC on port 25 end to end: a Tern whose dns group points at the test
DNS (nsd holding _dmarc TXT records, SPF records and a DKIM key; the
harness's responder staying silent for one zone) receives mail from
127.0.0.1 with smtplib, some of it signed in the test by dkimpy (Debian's
python3-dkim), and applies the From domain's policy (docs/dmarc.md):

- an aligned DKIM signature (MAIL FROM in another domain, so SPF does not
  align): dmarc=pass (p=REJECT ...), stored in INBOX;
- an aligned SPF pass alone: dmarc=pass;
- a forged From under p=reject: 550 5.7.1 naming the domain, nothing stored;
- p=quarantine: stored in Junk with dmarc=fail (... dis=QUARANTINE);
- p=none: INBOX with dmarc=fail (... dis=NONE);
- relaxed alignment lets a signature of mail.relaxed.test pass for
  relaxed.test; adkim=s does not (rejected);
- sp= applies to a subdomain without a record of its own; p= to the domain;
- two From domains: the strictest disposition (reject);
- no DMARC record: dmarc=none; no From at all: dmarc=permerror;
- a DMARC lookup that times out: 451 4.4.3;
- mailauth.dmarc_overrides turns reject into none (dis=NONE, logged), and
  an entry for an organisational domain turns its subdomain's p=none into
  a rejection;
- with mailauth.dmarc_enforce = false a p=reject failure is stored in INBOX
  with dis=NONE.
Everything below the Authentication-Results field is checked to be the
bytes sent."""
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

import dkim  # noqa: E402 (python3-dkim, scripts/deps.sh)

PASSWORD = "dmarc-Secret-1"
HOST = tern_harness.HOSTNAME
SPF = '@ TXT "v=spf1 ip4:127.0.0.1 -all"'
ENV = "bounce@env.test"       # SPF passes, aligned with no From domain below


def txt(record):
    return " ".join('"%s"' % record[i:i + 255] for i in range(0, len(record), 255))


@pytest.fixture(scope="module")
def key():
    """An RSA-2048 key (PEM) and its DKIM key record, made with openssl."""
    d = tempfile.mkdtemp(prefix="tern-dmarc-key-")
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
    rec = txt(key[1])
    d = testdns.TestDNS()
    d.zone("env.test", [SPF])
    d.zone("reject.test", [SPF, '_dmarc TXT "v=DMARC1; p=reject"',
                           "sel._domainkey TXT %s" % rec])
    d.zone("quar.test", ['_dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:r@quar.test"'])
    d.zone("none.test", ['_dmarc TXT "v=DMARC1; p=none"'])
    d.zone("relaxed.test", ['_dmarc TXT "v=DMARC1; p=reject"',
                            "sel._domainkey.mail TXT %s" % rec])
    d.zone("strict.test", ['_dmarc TXT "v=DMARC1; p=reject; adkim=s"',
                           "sel._domainkey.mail TXT %s" % rec])
    d.zone("parent.test", ['_dmarc TXT "v=DMARC1; p=none; sp=reject"'])
    d.zone("norecord.test", [SPF])
    d.zone("override.test", ['_dmarc TXT "v=DMARC1; p=reject"'])
    d.zone("spoofed.test", ['_dmarc TXT "v=DMARC1; p=none"'])
    d.responder("silent.test", "silent")
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
def srv(dns):
    s = make(dns, "dmarc", 'mailauth = {\n  dmarc_overrides = (\n'
             '    { domain = "override.test"; action = "none"; },\n'
             '    { domain = "spoofed.test"; action = "reject"; }\n  );\n};\n')
    yield s
    finish(s)


def message(subject, frm):
    head = b"From: %s\r\n" % frm.encode() if frm is not None else b""
    return (head + b"To: bob@local.test\r\nSubject: %s\r\n"
            b"Date: Sun, 29 Nov 2026 00:30:00 +0000\r\nMessage-ID: <%s@dmarc.test>\r\n\r\n"
            b"Hello Bob,\r\n\r\nthis is %s.\r\n" % (subject.encode(),
                                                   subject.replace(" ", ".").encode(),
                                                   subject.encode()))


def sign(msg, key, domain):
    return dkim.sign(msg, b"sel", domain.encode(), key[0],
                     canonicalize=(b"relaxed", b"relaxed")) + msg


def send(srv, data, sender=ENV):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname="client.env.test",
                      timeout=60) as c:
        c.sendmail(sender, ["bob@local.test"], data)


def send_refused(srv, data, sender=ENV):
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(srv, data, sender)
    return e.value.smtp_code, e.value.smtp_error.decode()


def stored(srv, subject, mailbox="INBOX"):
    """The one stored copy below Tern's trace lines, checking that no copy
    is in the other mailbox."""
    marker = "Subject: %s\r\n" % subject
    other = "Junk" if mailbox == "INBOX" else "INBOX"
    assert tern_harness.find_stored(srv, "bob@local.test", marker, other) == []
    found = tern_harness.find_stored(srv, "bob@local.test", marker, mailbox)
    assert len(found) == 1, found
    return tern_harness.split_stored(found[0])[1]


def nothing_stored(srv, subject):
    marker = "Subject: %s\r\n" % subject
    for mbox in ("INBOX", "Junk"):
        assert tern_harness.find_stored(srv, "bob@local.test", marker, mbox) == []


def field(*clauses):
    return ("Authentication-Results: %s;\r\n\t" % HOST + ";\r\n\t".join(clauses)
            + "\r\n").encode()


def fields_of(rest):
    """Our field's clauses, one a line, from a stored copy."""
    head = rest.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("Authentication-Results: %s;\r\n\t" % HOST), head[:300]
    value = head.split("\r\n\t", 1)[1]
    lines = value.split("\r\n")
    clauses = []
    for ln in lines:
        clauses.append(ln.lstrip("\t").rstrip(";"))
        if not ln.endswith(";"):
            break
    return clauses


SPF_ENV = "spf=pass smtp.mailfrom=%s" % ENV


def test_aligned_dkim_pass(srv, key):
    msg = sign(message("dmarc dkim pass", "Alice <alice@reject.test>"), key, "reject.test")
    send(srv, msg)
    rest = stored(srv, "dmarc dkim pass")
    clauses = fields_of(rest)
    assert clauses[0] == SPF_ENV
    assert clauses[1].startswith("dkim=pass header.d=reject.test ")
    assert clauses[2] == "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=reject.test"
    assert len(clauses) == 3
    assert rest.endswith(msg)
    srv.wait_log(r"event=dmarc domain=reject\.test result=pass policy=reject "
                 r"disposition=none override=- enforce=yes")


def test_aligned_spf_pass(srv):
    msg = message("dmarc spf pass", "alice@reject.test")
    send(srv, msg, sender="alice@reject.test")
    rest = stored(srv, "dmarc spf pass")
    assert rest == field("spf=pass smtp.mailfrom=alice@reject.test", "dkim=none",
                         "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=reject.test") \
        + msg, rest[:600]


def test_forged_from_rejected(srv):
    code, text = send_refused(srv, message("dmarc forged", "CEO <ceo@reject.test>"))
    assert code == 550
    assert text.startswith("5.7.1 ") and "DMARC" in text and "reject.test" in text, text
    nothing_stored(srv, "dmarc forged")
    srv.wait_log(r"event=dmarc domain=reject\.test result=fail policy=reject "
                 r"disposition=reject override=-")


def test_quarantine_into_junk(srv):
    msg = message("dmarc quarantine", "a@quar.test")
    send(srv, msg)
    rest = stored(srv, "dmarc quarantine", "Junk")
    assert rest == field(SPF_ENV, "dkim=none",
                         "dmarc=fail (p=QUARANTINE sp=QUARANTINE dis=QUARANTINE) "
                         "header.from=quar.test") + msg, rest[:600]


def test_p_none_inbox(srv):
    msg = message("dmarc p none", "a@none.test")
    send(srv, msg)
    rest = stored(srv, "dmarc p none")
    assert rest == field(SPF_ENV, "dkim=none",
                         "dmarc=fail (p=NONE sp=NONE dis=NONE) header.from=none.test") \
        + msg, rest[:600]


def test_relaxed_alignment_subdomain_signature(srv, key):
    msg = sign(message("dmarc relaxed", "a@relaxed.test"), key, "mail.relaxed.test")
    send(srv, msg)
    clauses = fields_of(stored(srv, "dmarc relaxed"))
    assert clauses[1].startswith("dkim=pass header.d=mail.relaxed.test ")
    assert clauses[2] == "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=relaxed.test"


def test_strict_alignment_rejects_subdomain_signature(srv, key):
    msg = sign(message("dmarc strict", "a@strict.test"), key, "mail.strict.test")
    code, text = send_refused(srv, msg)
    assert code == 550 and "strict.test" in text, text
    nothing_stored(srv, "dmarc strict")


def test_sp_for_subdomain(srv):
    code, text = send_refused(srv, message("dmarc sp sub", "a@news.parent.test"))
    assert code == 550 and "news.parent.test" in text, text
    nothing_stored(srv, "dmarc sp sub")
    srv.wait_log(r"event=dmarc domain=news\.parent\.test result=fail policy=reject "
                 r"disposition=reject override=- enforce=yes policy_domain=parent\.test")
    # the domain itself: p=none
    msg = message("dmarc sp parent", "a@parent.test")
    send(srv, msg)
    assert fields_of(stored(srv, "dmarc sp parent"))[2] == \
        "dmarc=fail (p=NONE sp=REJECT dis=NONE) header.from=parent.test"


def test_two_from_domains_strictest(srv):
    code, _ = send_refused(srv, message("dmarc two", "a@none.test, b@reject.test"))
    assert code == 550
    nothing_stored(srv, "dmarc two")


def test_no_record_none(srv):
    msg = message("dmarc no record", "a@norecord.test")
    send(srv, msg)
    rest = stored(srv, "dmarc no record")
    assert rest == field(SPF_ENV, "dkim=none", "dmarc=none header.from=norecord.test") + msg, \
        rest[:600]


def test_no_from_permerror(srv):
    msg = message("dmarc no from", None)
    send(srv, msg)
    rest = stored(srv, "dmarc no from")
    assert rest == field(SPF_ENV, "dkim=none", "dmarc=permerror (no From domain)") + msg, \
        rest[:600]


def test_dns_timeout_defers(srv):
    code, text = send_refused(srv, message("dmarc silent", "a@silent.test"))
    assert code == 451 and text.startswith("4.4.3 ") and "silent.test" in text, text
    nothing_stored(srv, "dmarc silent")


def test_override_reject_to_none(srv):
    msg = message("dmarc override", "a@override.test")
    send(srv, msg)
    rest = stored(srv, "dmarc override")
    assert rest == field(SPF_ENV, "dkim=none",
                         "dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=override.test") \
        + msg, rest[:600]
    srv.wait_log(r"event=dmarc domain=override\.test result=fail policy=reject "
                 r"disposition=none override=none enforce=yes")


def test_override_by_org_domain_rejects(srv):
    """An entry for the organisational domain covers its subdomains and
    turns p=none into a rejection."""
    code, text = send_refused(srv, message("dmarc override org", "a@news.spoofed.test"))
    assert code == 550 and "news.spoofed.test" in text and "this server rejects" in text, text
    nothing_stored(srv, "dmarc override org")
    srv.wait_log(r"event=dmarc domain=news\.spoofed\.test result=fail policy=none "
                 r"disposition=reject override=reject")


def test_not_enforced(dns):
    s = make(dns, "dmarc-noenforce", "mailauth = {\n  dmarc_enforce = false;\n};\n")
    try:
        msg = message("dmarc not enforced", "CEO <ceo@reject.test>")
        send(s, msg)
        rest = stored(s, "dmarc not enforced")
        assert rest == field(SPF_ENV, "dkim=none",
                             "dmarc=fail (p=REJECT sp=REJECT dis=NONE) header.from=reject.test") \
            + msg, rest[:600]
        msg = message("dmarc not enforced q", "a@quar.test")
        send(s, msg)
        stored(s, "dmarc not enforced q")      # INBOX, not Junk
        s.wait_log(r"event=dmarc domain=reject\.test result=fail policy=reject "
                   r"disposition=none override=- enforce=no")
    finally:
        finish(s)


def test_config_errors(tmp_path):
    """Bad overrides are named with file:line by `tern config check`."""
    s = tern_harness.TernServer(name="dmarc-conf", spf=True, dkim=True, dmarc=True)
    try:
        base = s.config_text()
        cases = [
            ('mailauth = {\n dmarc_overrides = ( { domain = "x.test"; action = "drop"; } );\n};\n',
             "action \"drop\""),
            ('mailauth = {\n dmarc_overrides = ( { domain = "bad domain"; action = "none"; } );\n};\n',
             "is not a domain name"),
            ('mailauth = {\n dmarc_overrides = ( { domain = "x.test"; } );\n};\n', "needs domain"),
            ('mailauth = {\n dmarc_overrides = ( { domain = "x.test"; action = "none"; },\n'
             '  { domain = "X.test."; action = "reject"; } );\n};\n', "twice"),
        ]
        lines = base.count("\n")
        for text, want in cases:
            with open(s.conf, "w") as f:
                f.write(base + text)
            p = s.tern("config", "check")
            out = p.stdout + p.stderr
            assert p.returncode != 0 and want in out, out
            assert "tern.conf:%d:" % (lines + 2) in out or "tern.conf:%d:" % (lines + 3) in out, out
        with open(s.conf, "w") as f:
            f.write(base + 'mailauth = {\n dmarc = true;\n dmarc_enforce = false;\n'
                    ' dmarc_overrides = ( { domain = "x.test"; action = "quarantine"; } );\n};\n')
        p = s.tern("config", "check")
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        s.cleanup()
