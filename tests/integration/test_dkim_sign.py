"""DKIM signing end to end: `tern dkim` keys, a running sending Tern
signing outbound mail, dkimpy (Debian's python3-dkim) verifying.

A sending Tern serves a.test (keys from `tern dkim keygen`), c.test (keys
rotated before start: its new RSA record is published in the test DNS,
its new Ed25519 record is not) and d.test (no keys).  Mail goes through
the queue to a second, receiving Tern (b.test), to a small SMTP peer
without 8BITMIME (seven.test), and to local mailboxes.  Checked:
- a message submitted on 465 to a local and a remote recipient: both
  copies carry two DKIM-Signature fields (rsa-sha256 and ed25519-sha256,
  d=a.test) that dkimpy verifies with the records keygen printed;
- the same through `tern sendmail` (as a mapped local user; needs root);
- an 8-bit message to the peer without 8BITMIME arrives converted to
  7 bits and still verifies (signed again after the conversion);
- rotation: the server activates c.test's pending RSA key once its record
  is in DNS (the old one becomes retiring, then retired after the grace
  period); the Ed25519 key waits until `tern dkim activate`; each message
  is signed with the selectors active at the time;
- a domain without keys sends unsigned mail without error;
- `tern dkim` errors (unknown domain, bad algorithm, a second rotation)
  exit non-zero."""
import json
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import tempfile

import dkim
import pytest

import tern as tern_harness
import testdns
from conftest import finish
from imapc import tls_ctx
from outbound import PASSWORD, SevenBitPeer, find, wait_for

LINE = re.compile(r'^(\S+)\. IN TXT \( (.*) \)$')


def records_of(output):
    """{name: record text} from the zone lines `tern dkim` printed."""
    out = {}
    for line in output.splitlines():
        m = LINE.match(line)
        if m:
            out[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return out


def zone_lines(output):
    return [ln for ln in output.splitlines() if LINE.match(ln)]


RECORDS = {}


def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    return RECORDS.get(name.rstrip("."), "").encode()


def signatures(msg):
    """[(s=, a=, d=)] of the DKIM-Signature fields of msg, top first; each
    verified by dkimpy (asserted)."""
    head = msg.split(b"\r\n\r\n", 1)[0]
    fields = re.findall(rb"(?im)^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head)
    d = dkim.DKIM(msg)
    out = []
    for i, f in enumerate(fields):
        tags = dict((k.strip().decode(), v.strip().decode())
                    for k, v in (t.split(b"=", 1) for t in re.sub(rb"\s+", b"", f).split(b";")
                                 if b"=" in t))
        assert d.verify(idx=i, dnsfunc=dnsfunc), "dkimpy rejects signature %d (%s)" % (i, tags["s"])
        out.append((tags["s"], tags["a"], tags["d"]))
    return out


@pytest.fixture(scope="module")
def peer():
    p = SevenBitPeer()
    yield p
    p.close()


@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="dks-recv")
    s.add_domain("b.test")
    s.add_user("bob@b.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def keys():
    """The sending Tern, set up but not started, with the output of its
    `tern dkim` commands."""
    s = tern_harness.TernServer(name="dks-send")
    for d in ("a.test", "c.test", "d.test"):
        s.add_domain(d)
    for u in ("alice@a.test", "dave@a.test", "carol@c.test", "dan@d.test"):
        s.add_user(u, PASSWORD)
    out = {}
    for d in ("a.test", "c.test"):
        p = s.tern("dkim", "keygen", d)
        assert p.returncode == 0, p.stderr
        out[d] = p.stdout
    p = s.tern("dkim", "rotate", "c.test")
    assert p.returncode == 0, p.stderr
    out["rotate"] = p.stdout
    for text in out.values():
        RECORDS.update(records_of(text))
    yield s, out
    finish(s)


@pytest.fixture(scope="module")
def dns(keys):
    _, out = keys
    rsa_line = [ln for ln in zone_lines(out["rotate"]) if "k=rsa" in ln]
    assert len(rsa_line) == 1, out["rotate"]
    d = testdns.TestDNS()
    # the line exactly as printed, pasted into the zone
    d.zone("c.test", ["@ MX 10 mail", "mail A 127.0.0.1"] + rsa_line)
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def sender(keys, dns, receiver, peer):
    s, _ = keys
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=False))
        f.write("dkim = {\n  check_interval = 1;\n  rotation_grace = 4;\n};\n")
        f.write("sendmail = {\n  users = ( { uid = \"nobody\"; address = \"alice@a.test\"; } );\n};\n")
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  routes = ( { domain = \"b.test\"; host = \"127.0.0.1\"; port = %d; },\n"
                "             { domain = \"seven.test\"; host = \"127.0.0.1\"; port = %d; } );\n"
                "};\n" % (receiver.port("smtp"), peer.port))
    os.chmod(s.conf, 0o644)
    s.start()
    return s


def submit(srv, sender, rcpts, subject, body="body of %s\r\n", extra=""):
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@x.test>\r\n%s\r\n" %
           (sender, ", ".join(rcpts), subject, subject.replace(" ", "-"), extra)).encode()
    msg += (body % subject).encode() if "%s" in body else body.encode()
    with smtplib.SMTP_SSL(srv.host, srv.port("submissions"), context=tls_ctx(),
                          timeout=30) as c:
        c.login(sender, PASSWORD)
        opts = ["BODY=8BITMIME"] if any(b >= 0x80 for b in msg) else []
        assert c.sendmail(sender, rcpts, msg, mail_options=opts) == {}


def keys_json(srv, domain):
    p = srv.tern("dkim", "list", domain, "--json")
    assert p.returncode == 0, p.stderr
    return {k["selector"]: k for k in json.loads(p.stdout)}


def test_keygen_output(keys):
    _, out = keys
    recs = records_of(out["a.test"])
    assert len(recs) == 2, out["a.test"]
    names = sorted(recs)
    assert re.match(r"^t\d{4}a-ed\._domainkey\.a\.test$", names[0]), names
    assert re.match(r"^t\d{4}a-rsa\._domainkey\.a\.test$", names[1]), names
    assert recs[names[1]].startswith("v=DKIM1; k=rsa; p=MIIB")
    assert recs[names[0]].startswith("v=DKIM1; k=ed25519; p=")
    for ln in zone_lines(out["a.test"]):
        assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', ln))
    assert "active" in out["a.test"]
    assert "pending" in out["rotate"] and "t%sb-rsa" % names[1][1:5] in out["rotate"]


def test_submission_signed_local_and_remote(sender, receiver):
    submit(sender, "alice@a.test", ["bob@b.test", "dave@a.test"], "signed one")
    remote = wait_for(lambda: find(receiver, "bob@b.test", b"body of signed one"))
    local = wait_for(lambda: find(sender, "dave@a.test", b"body of signed one"))
    assert remote and local, sender.log_tail()
    for msg in (remote, local):
        sigs = signatures(msg)
        assert sorted(a for _, a, _ in sigs) == ["ed25519-sha256", "rsa-sha256"], sigs
        assert all(d == "a.test" for _, _, d in sigs)
        assert all(s.startswith("t") and s[-4:] in ("-rsa", "a-ed") for s, _, _ in sigs)
    # dkimpy notices a change
    assert not dkim.verify(remote.replace(b"body of signed one", b"body of forged one"),
                           dnsfunc=dnsfunc)


def test_sendmail_signed(sender, receiver):
    if os.geteuid() != 0:
        pytest.skip("needs root to run tern sendmail as another local user")
    pwd.getpwnam("nobody")
    d = tempfile.mkdtemp(prefix="tern-dks-bin-")
    try:
        os.chmod(d, 0o755)
        binary = os.path.join(d, "tern")
        shutil.copy2(tern_harness.TERN_BIN, binary)
        os.chmod(binary, 0o755)
        msg = b"From: alice@a.test\nTo: bob@b.test\nSubject: via sendmail\n\nbody of sendmail one\n"
        p = subprocess.run(["runuser", "-u", "nobody", "--", binary, "-c", sender.conf,
                            "sendmail", "bob@b.test"], input=msg, capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
    finally:
        shutil.rmtree(d, True)
    got = wait_for(lambda: find(receiver, "bob@b.test", b"body of sendmail one"))
    assert got, sender.log_tail()
    assert sorted(a for _, a, _ in signatures(got)) == ["ed25519-sha256", "rsa-sha256"]


def test_8bit_downgraded_and_resigned(sender, peer):
    body = "caf\u00e9 cr\u00e8me for %s\r\n"
    submit(sender, "alice@a.test", ["x@seven.test"], "eight bit", body=body,
           extra="MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n")
    got = wait_for(lambda: [m for m in peer.messages if b"eight-bit@x.test" in m])
    assert got, sender.log_tail()
    msg = got[0]
    assert all(b < 0x80 for b in msg), "not converted"
    assert re.search(rb"(?im)^Content-Transfer-Encoding: *(quoted-printable|base64)", msg)
    sigs = signatures(msg)
    assert sorted(a for _, a, _ in sigs) == ["ed25519-sha256", "rsa-sha256"], sigs
    assert "event=resigned" in sender.log()


def test_domain_without_keys_unsigned(sender, receiver):
    submit(sender, "dan@d.test", ["bob@b.test"], "no keys")
    got = wait_for(lambda: find(receiver, "bob@b.test", b"body of no keys"))
    assert got
    assert b"DKIM-Signature" not in got.split(b"\r\n\r\n", 1)[0]


def test_rotation(sender, receiver, keys):
    _, out = keys
    old = {("rsa" if "k=rsa" in ln else "ed"): LINE.match(ln).group(1).split(".")[0]
           for ln in zone_lines(out["c.test"])}
    new = {("rsa" if "k=rsa" in ln else "ed"): LINE.match(ln).group(1).split(".")[0]
           for ln in zone_lines(out["rotate"])}
    # the server saw the new RSA record in DNS: active; the old one retiring
    k = wait_for(lambda: (lambda j: j if j[new["rsa"]]["state"] == "active" else None)(
        keys_json(sender, "c.test")), timeout=30)
    assert k, (keys_json(sender, "c.test"), sender.log_tail())
    assert k[old["rsa"]]["state"] in ("retiring", "retired")
    assert k[old["rsa"]]["retire_at"] == k[new["rsa"]]["activated"] + 4
    assert k[new["ed"]]["state"] == "pending"        # its record is not published
    assert k[old["ed"]]["state"] == "active"
    submit(sender, "carol@c.test", ["bob@b.test"], "rotated one")
    got = wait_for(lambda: find(receiver, "bob@b.test", b"body of rotated one"))
    assert got
    assert sorted(s for s, _, _ in signatures(got)) == sorted([new["rsa"], old["ed"]])

    # a second rotation while one is pending is refused
    p = sender.tern("dkim", "rotate", "c.test")
    assert p.returncode != 0 and "already pending" in p.stderr

    # the administrator forces the Ed25519 key
    p = sender.tern("dkim", "activate", "c.test", new["ed"])
    assert p.returncode == 0, p.stderr
    assert "1 older key retiring" in p.stdout
    k = keys_json(sender, "c.test")
    assert k[new["ed"]]["state"] == "active"
    assert k[old["ed"]]["state"] == "retiring"
    submit(sender, "carol@c.test", ["bob@b.test"], "rotated two")
    got = wait_for(lambda: find(receiver, "bob@b.test", b"body of rotated two"))
    assert got
    assert sorted(s for s, _, _ in signatures(got)) == sorted([new["rsa"], new["ed"]])
    # retired after the grace period (4 s), by the server's check
    assert wait_for(lambda: keys_json(sender, "c.test")[old["ed"]]["state"] == "retired",
                    timeout=20), keys_json(sender, "c.test")
    assert keys_json(sender, "c.test")[old["rsa"]]["state"] == "retired"


def test_cli_errors(sender):
    p = sender.tern("dkim", "keygen", "unknown.test")
    assert p.returncode != 0 and "not a local domain" in p.stderr
    p = sender.tern("dkim", "keygen", "a.test", "--algorithm", "dsa")
    assert p.returncode != 0 and "unknown algorithm" in p.stderr
    p = sender.tern("dkim", "rotate", "d.test")
    assert p.returncode != 0 and "no active DKIM key" in p.stderr
    p = sender.tern("dkim", "activate", "a.test", "nope")
    assert p.returncode != 0 and "no DKIM key" in p.stderr
    p = sender.tern("dkim", "keygen", "a.test", "--selector", "bad.sel", "--algorithm", "ed25519")
    assert p.returncode != 0 and "selector" in p.stderr
    p = sender.tern("dkim", "frobnicate")
    assert p.returncode != 0
    # an explicit selector and algorithm: used as given; pending (a.test has an active key)
    p = sender.tern("dkim", "keygen", "a.test", "--selector", "extra", "--algorithm", "ed25519")
    assert p.returncode == 0, p.stderr
    assert "extra._domainkey.a.test. IN TXT" in p.stdout
    assert keys_json(sender, "a.test")["extra"]["state"] == "pending"
    p = sender.tern("dkim", "list")
    assert p.returncode == 0 and "c.test" in p.stdout and "a.test" in p.stdout
