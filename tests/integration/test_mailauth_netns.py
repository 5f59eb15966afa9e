"""Mail authentication between two Terns, end to end, inside a network
namespace this module creates (tests/harness/netns.py): each Tern has its
own domain, hostname, certificate, DKIM keys and address with port 25
(and 465, 443) of its own, and the test DNS serves exactly what `tern dns
records` tells each administrator to publish.  Nothing is routed by
configuration: mail goes by MX records to port 25, the MTA-STS policy is
fetched from https://mta-sts.DOMAIN on port 443.

In the namespace (loopback only):
  127.0.0.1   the test DNS (nsd, a high port)
  127.0.0.20  Tern A: a.test (and c.test), hostname mail.a.test
  127.0.0.21  Tern B: b.test, hostname mail.b.test
  127.0.0.22  a forger: no Tern, only this test's raw SMTP client

Two routes of the namespace's local table give each Tern its own source
address when it connects to the other (as on two machines): without them
Linux picks 127.0.0.1, the preferred source of 127.0.0.0/8, for every
connection, and SPF (`v=spf1 mx -all`, the record `tern dns records`
prints) would rightly fail.

The zones: every line `tern dns records DOMAIN` prints for a.test and b.test
(MX, A, SPF, DMARC, MTA-STS TXT and the mta-sts name, TLS-RPT, SRV, both
DKIM selectors after `tern dkim keygen`, and the PTR lines meant for the
address provider, served from a 0.0.127.in-addr.arpa zone), with two
changes: a.test's DMARC record says p=reject (the printed one says
p=quarantine), and the TLSA lines are left out, since the zones are not
DNSSEC-signed (docs/dns.md: publish TLSA only in a signed zone; and with
DANE a sender would not use MTA-STS at all, RFC 8461 2).  c.test, a second
domain of A, is misconfigured on purpose: its MX host mx.c.test is not in
A's MTA-STS policy.

Cases:
- `tern dns check` says every record of both domains is OK;
- alice@a.test submits to bob@b.test through A: B stores it with one
  Authentication-Results field: spf=pass, dkim=pass twice (RSA and
  Ed25519, both header.d=a.test), dmarc=pass;
- B sends to A (mode enforce): B fetches A's policy from A's own HTTPS
  listener (A's log shows the GET from B's address) and delivers over
  verified TLS; to c.test, whose MX is not in the policy, B defers
  (mx-mismatch) and delivers nothing;
- a forged From: someone@a.test, sent from 127.0.0.22 straight to B's
  port 25, unsigned: 550 5.7.1 (A's p=reject); after A's record becomes
  p=quarantine (new zone data, B restarted so that its DNS cache is
  empty), the same message lands in B's Junk with dmarc=fail."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from netns import NetNS
from outbound import PASSWORD, compose, deferred, find, submit, wait_for
from smtpc import SmtpConn, dot_stuff

A_ADDR = "127.0.0.20"
B_ADDR = "127.0.0.21"
FORGER_ADDR = "127.0.0.22"
REVERSE_ZONE = "0.0.127.in-addr.arpa"
ZONES = ("a.test", "b.test", "c.test", REVERSE_ZONE)


@pytest.fixture(scope="module")
def ns():
    home = NetNS.inode()
    with NetNS():
        assert NetNS.inode() != home
        for dst, src in ((B_ADDR, A_ADDR), (A_ADDR, B_ADDR)):
            subprocess.run(["ip", "route", "add", "local", dst + "/32", "dev", "lo",
                            "table", "local", "src", src], check=True, timeout=30)
        yield


def self_signed(folder, names):
    """A self-signed certificate (cert.pem, key.pem in folder) for names,
    the first one as its subject."""
    os.makedirs(folder, exist_ok=True)
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=%s" % names[0], "-addext",
                        "subjectAltName=" + ",".join("DNS:" + n for n in names)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return cert, key


def install_cert(srv, cert, key):
    """Replace the certificate `tern init` made (keeping its files' owners
    and modes)."""
    for src, dst in ((cert, "cert.pem"), (key, "key.pem")):
        with open(src, "rb") as f:
            data = f.read()
        with open(os.path.join(srv.dir, "tls", dst), "wb") as f:
            f.write(data)


def make_tern(name, addr, hostname, domains, users, dns, ca_file):
    s = tern_harness.TernServer(name=name, offset=0, host=addr, spf=True, dkim=True,
                                dmarc=True)
    s.set("hostname", hostname)
    s.set("mta_sts.mode", "enforce")
    cert, key = self_signed(os.path.join(s.dir, "selfsigned"),
                            [hostname] + ["mta-sts." + d for d in domains])
    install_cert(s, cert, key)
    with open(ca_file, "ab") as out, open(cert, "rb") as f:
        out.write(f.read())
    for d in domains:
        s.add_domain(d)
    for u in users:
        s.add_user(u, PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=False))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  ca_file = \"%s\";\n"
                "  mta_sts = { enabled = true; ca_file = \"%s\"; timeout = 5; };\n};\n"
                % (ca_file, ca_file))
    return s


def published(srv, domain):
    """The zone-file lines `tern dns records DOMAIN` prints (comments and
    blank lines left out), after `tern dkim keygen DOMAIN`."""
    p = srv.tern("dkim", "keygen", domain)
    assert p.returncode == 0, p.stdout + p.stderr
    p = srv.tern("dns", "records", domain)
    assert p.returncode == 0, p.stdout + p.stderr
    return [ln for ln in p.stdout.splitlines() if ln.strip() and not ln.startswith(";")]


def owner(line):
    return line.split()[0].rstrip(".").lower()


@pytest.fixture(scope="module")
def world(ns):
    """(A, B, dns, records): both Terns running, the DNS serving their
    records; records[domain] holds the lines served for it."""
    # both certificates, for both Terns' verified TLS and policy fetches
    # (read by their unprivileged workers)
    ca_dir = tempfile.mkdtemp(prefix="tern-it-mauth-ca-")
    os.chmod(ca_dir, 0o755)
    ca_file = os.path.join(ca_dir, "both.pem")
    made = []
    d = testdns.TestDNS()
    for zone in ZONES:               # filled in below, before it starts
        d.zone(zone, [])
    try:
        a = make_tern("mauth-a", A_ADDR, "mail.a.test", ["a.test", "c.test"],
                      ["alice@a.test", "carl@c.test", "dmarc-reports@a.test", "tlsrpt@a.test"],
                      d, ca_file)
        made.append(a)
        b = make_tern("mauth-b", B_ADDR, "mail.b.test", ["b.test"],
                      ["bob@b.test", "dmarc-reports@b.test", "tlsrpt@b.test"], d, ca_file)
        made.append(b)
        os.chmod(ca_file, 0o644)
        records = {}
        reverse = []
        for srv, dom in ((a, "a.test"), (b, "b.test")):
            lines = published(srv, dom)
            assert any(" MX " in ln for ln in lines) and any("DKIM1" in ln for ln in lines)
            zone = []
            for ln in lines:
                if " TLSA " in ln:
                    continue                          # not a signed zone (see above)
                if owner(ln).endswith(REVERSE_ZONE):
                    reverse.append(ln)
                    continue
                assert owner(ln) == dom or owner(ln).endswith("." + dom), ln
                zone.append(ln)
            records[dom] = zone
        dmarc = [ln for ln in records["a.test"] if ln.startswith("_dmarc.a.test.")]
        assert len(dmarc) == 1 and "p=quarantine" in dmarc[0], dmarc
        records["a.test"] = [ln.replace("p=quarantine", "p=reject") for ln in records["a.test"]]
        # c.test (on A): its MX is not the one A's MTA-STS policy names
        sts_id = [ln for ln in records["a.test"] if ln.startswith("_mta-sts.a.test.")][0]
        sts_id = re.search(r"id=([0-9A-Za-z]+)", sts_id).group(1)
        records["c.test"] = ["@ MX 10 mx", "mx A %s" % A_ADDR, "mta-sts CNAME mail.a.test.",
                             "_mta-sts TXT \"v=STSv1; id=%s;\"" % sts_id,
                             "@ TXT \"v=spf1 mx -all\""]
        assert len(reverse) == 2, reverse
        records[REVERSE_ZONE] = reverse
        for zone, lines in records.items():
            d.zone(zone, lines)
        d.start()
        a.start()
        b.start()
        yield a, b, d, records
    finally:
        for s in made:
            finish(s)
        d.cleanup()
        shutil.rmtree(ca_dir, ignore_errors=True)


def test_dns_check_all_ok(world):
    a, b, _, records = world
    assert any(" PTR mail.a.test." in ln for ln in records[REVERSE_ZONE])
    for srv, dom in ((a, "a.test"), (b, "b.test")):
        p = srv.tern("dns", "check", dom, timeout=60)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out
        summary = re.search(r"dns check %s: (\d+) ok, (\d+) warnings, (\d+) problems"
                            % re.escape(dom), out)
        assert summary and summary.group(2, 3) == ("0", "0"), out
        # every record, the PTR served from the reverse zone included
        for kind in ("A/AAAA", "MX", "SPF", "DMARC", "MTA-STS", "TLS-RPT", "SRV", "DKIM",
                     "PTR"):
            assert re.search(r"^ok\s+%s " % re.escape(kind), out, re.M), (kind, out)
        assert len(re.findall(r"^ok\s+DKIM ", out, re.M)) == 2, out
        assert re.search(r"^ok\s+SPF %s: passes for this server" % re.escape(dom), out, re.M)
        assert not re.search(r"^(problem|warning)", out, re.M), out


def auth_results(stored):
    """(number of Authentication-Results fields, the clauses of the first)
    of a stored copy's header section."""
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    fields = re.findall(r"^Authentication-Results:[^\r]*(?:\r\n[ \t][^\r]*)*", head,
                        re.M | re.I)
    if not fields:
        return 0, []
    value = re.sub(r"\r\n[ \t]+", " ", fields[0]).split(":", 1)[1]
    return len(fields), [c.strip() for c in value.split(";")]


def test_a_to_b_spf_dkim_dmarc_pass(world):
    a, b, _, _ = world
    submit(a, ["bob@b.test"], "auth a to b", sender="alice@a.test")
    got = wait_for(lambda: find(b, "bob@b.test", b"body of auth a to b"))
    assert got, a.log_tail() + "\n----\n" + b.log_tail()
    trace, msg = tern_harness.split_stored(got)
    assert b"by mail.b.test" in trace and b"with ESMTPS" in trace, trace
    count, clauses = auth_results(msg)
    assert count == 1, msg[:2000]
    assert msg.startswith(b"Authentication-Results: mail.b.test;"), msg[:300]
    assert clauses[0] == "mail.b.test", clauses
    assert clauses[1] == "spf=pass smtp.mailfrom=alice@a.test", clauses
    dkim = [c for c in clauses if c.startswith("dkim=")]
    assert len(dkim) == 2, clauses
    assert all(c.startswith("dkim=pass header.d=a.test ") for c in dkim), dkim
    assert {re.search(r"header\.a=(\S+)", c).group(1) for c in dkim} == \
        {"rsa-sha256", "ed25519-sha256"}, dkim
    assert clauses[-1] == "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=a.test", clauses
    assert len(clauses) == 5, clauses
    # the message as alice sent it, below A's Received line and signatures
    assert msg.endswith(compose(["bob@b.test"], "auth a to b"))
    assert msg.count(b"DKIM-Signature:") == 2
    assert re.search(r"event=dmarc domain=a\.test result=pass", b.log()), b.log_tail()
    assert re.search(r"ip=%s" % re.escape(A_ADDR), b.log()), b.log_tail()
    # B's policy (enforce too) made A verify B's certificate
    assert re.search(r"event=connect qid=\S+ host=mail\.b\.test ip=%s port=25 tls=verify"
                     % re.escape(B_ADDR), a.log()), a.log()


def http_fetches(srv, host, peer):
    return [ln for ln in srv.log().splitlines()
            if "mod=http" in ln and "ip=%s " % peer in ln and "host=%s " % host in ln
            and "path=/.well-known/mta-sts.txt" in ln]


def test_b_to_a_mta_sts_enforced_and_verified(world):
    a, b, _, _ = world
    submit(b, ["alice@a.test"], "sts b to a", sender="bob@b.test")
    got = wait_for(lambda: find(a, "alice@a.test", b"body of sts b to a"))
    assert got, b.log_tail() + "\n----\n" + a.log_tail()
    assert b"with ESMTPS" in got
    # B fetched the policy from A's own HTTPS listener
    fetched = http_fetches(a, "mta-sts.a.test", B_ADDR)
    assert fetched and "status=200" in fetched[0], a.log()
    blog = b.log()
    assert re.search(r"event=mta_sts_policy domain=a\.test id=\S+ mode=enforce", blog), blog
    assert re.search(r"event=mta_sts qid=\S+ domain=a\.test mode=enforce", blog), blog
    assert re.search(r"event=connect qid=\S+ host=mail\.a\.test ip=%s port=25 tls=verify"
                     % re.escape(A_ADDR), blog), blog
    assert re.search(r"event=tls host=mail\.a\.test .*verified=yes", blog), blog
    # and A checks B's mail as B checked A's
    _, msg = tern_harness.split_stored(got)
    count, clauses = auth_results(msg)
    assert count == 1 and clauses[1] == "spf=pass smtp.mailfrom=bob@b.test", clauses
    assert [c.split()[0] for c in clauses[2:]] == ["dkim=pass", "dkim=pass", "dmarc=pass"], \
        clauses


def test_b_to_c_mx_not_in_policy_defers(world):
    a, b, _, _ = world
    submit(b, ["carl@c.test"], "sts mismatch", sender="bob@b.test")
    d = deferred(b, "carl@c.test")
    assert d, b.log_tail()
    assert "does not match the MTA-STS policy" in d[0]["last_error"], d
    assert wait_for(lambda: http_fetches(a, "mta-sts.c.test", B_ADDR), 10), a.log_tail()
    blog = b.log()
    assert re.search(r"event=mta_sts_report qid=\S+ domain=c\.test mode=enforce "
                     r"host=mx\.c\.test result=mx-mismatch", blog), blog
    assert not re.search(r"event=connect qid=\S+ host=mx\.c\.test", blog), blog
    assert find(a, "carl@c.test", b"body of sts mismatch") is None


FORGED = ("From: Alice <someone@a.test>\r\nTo: bob@b.test\r\nSubject: %s\r\n"
          "Date: Sun, 29 Nov 2026 01:30:00 +0000\r\nMessage-ID: <%s@forger.test>\r\n\r\n"
          "Please pay this invoice.\r\n")


def forge(b, subject):
    """Send the forged message from FORGER_ADDR to B's port 25; returns the
    reply to the message data (or to the first command refused)."""
    c = SmtpConn(25, host=B_ADDR, source=FORGER_ADDR, read_greeting=True, timeout=30)
    try:
        assert c.greeting.code == 220, c.greeting
        c.expect("EHLO forger.test", 250)
        c.expect("MAIL FROM:<someone@a.test>", 250)
        c.expect("RCPT TO:<bob@b.test>", 250)
        c.expect("DATA", 354)
        c.send(dot_stuff((FORGED % (subject, subject.replace(" ", "-"))).encode()) + b".\r\n")
        r = c.reply()
        c.cmd("QUIT")
        return r
    finally:
        c.close()


def stored_in(srv, marker):
    return {mbox: tern_harness.find_stored(srv, "bob@b.test", marker, mbox)
            for mbox in ("INBOX", "Junk")}


def test_forged_from_rejected_by_p_reject(world):
    _, b, _, _ = world
    r = forge(b, "forged reject")
    assert r.code == 550, r
    assert r.lines[0].startswith("550 5.7.1 ") and "DMARC" in r.text and "a.test" in r.text, r
    assert stored_in(b, b"Subject: forged reject\r\n") == {"INBOX": [], "Junk": []}
    b.wait_log(r"event=dmarc domain=a\.test result=fail policy=reject disposition=reject")
    # SPF saw the forger's own address, which a.test's record does not allow
    assert re.search(r"ip=%s" % re.escape(FORGER_ADDR), b.log())


def test_forged_from_quarantined_by_p_quarantine(world):
    _, b, d, records = world
    lines = [ln.replace("p=reject", "p=quarantine") for ln in records["a.test"]]
    assert lines != records["a.test"]
    d.stop()
    d.zone("a.test", lines)
    d.start()
    b.restart()                     # its DNS cache held the p=reject record
    r = forge(b, "forged quarantine")
    assert r.code == 250, r
    got = stored_in(b, b"Subject: forged quarantine\r\n")
    assert got["INBOX"] == [] and len(got["Junk"]) == 1, got
    _, msg = tern_harness.split_stored(got["Junk"][0])
    count, clauses = auth_results(msg)
    assert count == 1, msg[:1000]
    assert clauses[1:] == [
        "spf=fail smtp.mailfrom=someone@a.test", "dkim=none",
        "dmarc=fail (p=QUARANTINE sp=QUARANTINE dis=QUARANTINE) header.from=a.test"], clauses
    b.wait_log(r"event=dmarc domain=a\.test result=fail policy=quarantine "
               r"disposition=quarantine")
