"""`tern dns records` and `tern dns check` against the test DNS (nsd).

The end-to-end property: the zone lines `records` prints, loaded as they are
into nsd, make `check` report every record OK and exit 0.  Then each record
is broken in turn, each in a domain of its own served by the same nsd (no
MX, an SPF record with 11 includes, a wrong MTA-STS id, a bad DMARC
record), and for the hostname-level records (TLSA, PTR) a second
configuration of the same instance whose hostname has a wrong TLSA record
and whose address maps back to another name; `check` must name the
specific problem and exit non-zero.  The server is never started: both
commands read the configuration, the store's domains and DNS only.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest

HARNESS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)

import tern as tern_harness  # noqa: E402
import testdns  # noqa: E402

HOST = tern_harness.HOSTNAME           # mail.example.test
HOST2 = "mx2.example.test"             # the second configuration's hostname
GOOD = "example.test"
BROKEN = ["nomx.test", "spf11.test", "badsts.test", "baddmarc.test", "badspf.test",
          "badrpt.test"]
ZONES = [GOOD] + BROKEN + ["other.test", "127.in-addr.arpa"]
LINE = re.compile(r"^(\S+)\. 3600 IN (\S+) (.*)$")


def zone_of(name):
    name = name.rstrip(".")
    best = None
    for z in ZONES:
        if (name == z or name.endswith("." + z)) and (best is None or len(z) > len(best)):
            best = z
    assert best is not None, name
    return best


def record_lines(text):
    """The zone lines of `records` output (comments and blanks left out)."""
    out = []
    for ln in text.splitlines():
        if not ln or ln.startswith(";"):
            continue
        assert LINE.match(ln), "not a zone line: %r" % ln
        out.append(ln)
    return out


class Check:
    def __init__(self, p):
        self.rc = p.returncode
        self.stdout = p.stdout
        self.stderr = p.stderr
        self.lines = {}     # "LABEL NAME" -> (status, message)
        self.fixes = {}
        last = None
        for ln in p.stdout.splitlines():
            m = re.match(r"^(ok|warning|problem) +(.+?) (\S+): (.*)$", ln)
            if m:
                last = "%s %s" % (m.group(2), m.group(3))
                self.lines[last] = (m.group(1), m.group(4))
            elif ln.startswith("         fix: "):
                self.fixes[last] = ln[len("         fix: "):]
        self.summary = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""

    def status(self, key):
        return self.lines.get(key, (None, None))[0]

    def message(self, key):
        return self.lines.get(key, (None, ""))[1]

    def problems(self):
        return sorted(k for k, v in self.lines.items() if v[0] == "problem")

    def __repr__(self):
        return "rc=%d\n%s%s" % (self.rc, self.stdout, self.stderr)


# the selector base `tern dkim keygen` picks for a domain's first keys
SEL = "t%da" % time.gmtime().tm_year


@pytest.fixture(scope="module")
def env():
    srv = tern_harness.TernServer(name="dnsrec")
    base = srv.config_text()
    for d in [GOOD] + BROKEN + ["other.test"]:
        srv.add_domain(d)
    # signing keys (RSA and Ed25519): records prints their DKIM records
    p = srv.tern("dkim", "keygen", GOOD, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    # the second configuration: same data folder, another hostname
    conf2 = os.path.join(srv.dir, "tern-mx2.conf")
    with open(conf2, "w") as f:
        f.write(tern_harness.config_set(base, "hostname", HOST2))

    def records(domain, conf=srv.conf):
        p = tern_harness.run_tern(["dns", "records", domain], conf=conf, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    printed = {d: records(d) for d in [GOOD] + BROKEN}
    printed["other.test"] = records("other.test", conf2)
    zones = {z: [] for z in ZONES}
    seen = set()
    for d, text in printed.items():
        for ln in record_lines(text):
            name, rtype, rdata = LINE.match(ln).groups()
            if d == "nomx.test" and rtype == "MX":
                continue
            if d == "spf11.test" and rdata.startswith('"v=spf1'):
                rdata = '"v=spf1 %s -all"' % " ".join(
                    "include:i%d.spf11.test" % i for i in range(1, 12))
            if d == "badsts.test" and name.startswith("_mta-sts."):
                rdata = '"v=STSv1; id=20240101000000"'
            if d == "baddmarc.test" and name.startswith("_dmarc."):
                rdata = '"v=DMARC1; p=maybe"'
            if d == "badspf.test" and rdata.startswith('"v=spf1'):
                rdata = '"v=spf1 mx foo:bar -all"'
            if d == "badrpt.test" and name.startswith("_smtp._tls."):
                rdata = '"v=TLSRPTv1; rua=mailto:a@badrpt.test; rua=mailto:b@badrpt.test"'
            if d == "other.test" and rtype == "TLSA":
                rdata = "3 1 1 " + "ab" * 32
            if d == "other.test" and rtype == "PTR":
                continue          # 127.0.0.1 maps back to HOST, not HOST2
            rr = "%s. %s %s" % (name, rtype, rdata)
            if rr not in seen:
                seen.add(rr)
                zones[zone_of(name)].append(rr)
    zones["spf11.test"] += ['i%d TXT "v=spf1 -all"' % i for i in range(1, 12)]
    dns = testdns.TestDNS()
    for z, rrs in zones.items():
        # the hostname's zone is signed, so its TLSA record counts (RFC 7672 2.2)
        dns.zone(z, rrs, dnssec=(z == GOOD))
    dns.start()
    group = "\n" + dns.tern_config(timeout=3)
    with open(srv.conf, "a") as f:
        f.write(group)
    with open(conf2, "a") as f:
        f.write(group)
    yield {"srv": srv, "conf2": conf2, "printed": printed, "dns": dns}
    dns.cleanup()
    srv.cleanup()


def check(env, domain, conf=None, *extra):
    p = tern_harness.run_tern(["dns", "check", domain] + list(extra),
                              conf=conf or env["srv"].conf, timeout=60)
    return Check(p) if "--json" not in extra else p


def test_records_lines(env):
    srv = env["srv"]
    text = env["printed"][GOOD]
    lines = record_lines(text)
    expect = [
        "example.test. 3600 IN MX 10 mail.example.test.",
        "mail.example.test. 3600 IN A 127.0.0.1",
        'example.test. 3600 IN TXT "v=spf1 mx -all"',
        '_dmarc.example.test. 3600 IN TXT "v=DMARC1; p=quarantine; '
        'rua=mailto:dmarc-reports@example.test"',
    ]
    assert lines[:4] == expect, text
    sts = [ln for ln in lines if ln.startswith("_mta-sts.")]
    assert len(sts) == 1 and re.match(r'^_mta-sts\.example\.test\. 3600 IN TXT '
                                      r'"v=STSv1; id=[0-9a-f]{32}"$', sts[0]), text
    assert "mta-sts.example.test. 3600 IN CNAME mail.example.test." in lines
    assert ('_smtp._tls.example.test. 3600 IN TXT "v=TLSRPTv1; '
            'rua=mailto:tlsrpt@example.test"') in lines
    for svc, kind in (("submissions", "submissions"), ("submission", "submission"),
                      ("imaps", "imaps"), ("imap", "imap"), ("pop3s", "pop3s"),
                      ("pop3", "pop3")):
        assert "_%s._tcp.example.test. 3600 IN SRV 0 1 %d mail.example.test." % (
            svc, srv.port(kind)) in lines, (svc, text)
    tlsa = [ln for ln in lines if " TLSA " in ln]
    assert len(tlsa) == 1 and tlsa[0].startswith(
        "_%d._tcp.mail.example.test. 3600 IN TLSA 3 1 1 " % srv.port("smtp")), text
    assert "1.0.0.127.in-addr.arpa. 3600 IN PTR mail.example.test." in lines
    # the DKIM keys keygen made, one record each
    dkim = [ln for ln in lines if "._domainkey." in ln]
    assert len(dkim) == 2, text
    assert dkim[0].startswith(SEL + '-rsa._domainkey.example.test. 3600 IN TXT '
                              '"v=DKIM1; k=rsa; p='), text
    assert dkim[1].startswith(SEL + '-ed._domainkey.example.test. 3600 IN TXT '
                              '"v=DKIM1; k=ed25519; p='), text
    # the comments that matter to the administrator
    assert "tern user add dmarc-reports@example.test" in text
    assert "DNSSEC" in text


def test_records_tlsa_is_the_certificate_key(env):
    cert = os.path.join(env["srv"].dir, "tls", "cert.pem")
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    want = hashlib.sha256(der).hexdigest()
    assert (" TLSA 3 1 1 " + want) in env["printed"][GOOD]


def test_records_json_and_disabled_listener(env):
    srv = env["srv"]
    conf3 = os.path.join(srv.dir, "tern-nopop3.conf")
    text = tern_harness.config_set(srv.config_text(), "listen.pop3", 0)
    text = tern_harness.config_set(text, "listen.bind", ["0.0.0.0"])
    with open(conf3, "w") as f:
        f.write(text)
    p = tern_harness.run_tern(["dns", "records", GOOD, "--json"], conf=conf3, timeout=30)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["domain"] == GOOD and doc["hostname"] == HOST
    by = {r["name"]: r for r in doc["records"]}
    assert by["_pop3._tcp.example.test"]["value"] == "0 0 0 ."
    assert by["_pop3._tcp.example.test"]["line"] == "_pop3._tcp.example.test. 3600 IN SRV 0 0 0 ."
    # a wildcard bind: no A or PTR lines, a note for each instead
    assert not [r for r in doc["records"] if r["type"] in ("A", "AAAA", "PTR")]
    assert any("PTR" in n for n in doc["notes"]) and any("A (and AAAA)" in n
                                                         for n in doc["notes"])


def test_records_unknown_domain(env):
    p = env["srv"].tern("dns", "records", "not-local.test", timeout=30)
    assert p.returncode == 1 and "not a local domain" in p.stderr, p
    p = env["srv"].tern("dns", "records", timeout=30)
    assert p.returncode == 2, p


def test_check_all_ok_after_publishing_records(env):
    c = check(env, GOOD)
    assert c.rc == 0, c
    assert c.problems() == [], c
    assert re.search(r"dns check example.test: \d+ ok, 0 warnings, 0 problems$", c.summary), c
    assert c.status("MX example.test") == "ok"
    assert c.status("SPF example.test") == "ok"
    assert "DNS lookups" in c.message("SPF example.test")
    assert c.status("MTA-STS _mta-sts.example.test") == "ok"
    assert c.status("TLSA _%d._tcp.mail.example.test" % env["srv"].port("smtp")) == "ok"
    assert "DNSSEC-signed" in c.message("TLSA _%d._tcp.mail.example.test"
                                        % env["srv"].port("smtp"))
    assert c.message("PTR 127.0.0.1") == "127.0.0.1 -> mail.example.test", c
    assert c.status("SRV pop3s _pop3s._tcp.example.test") == "ok"
    assert c.status("DMARC _dmarc.example.test") == "ok"
    assert c.status("TLS-RPT _smtp._tls.example.test") == "ok"


def test_check_json(env):
    p = check(env, GOOD, None, "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["problems"] == 0 and doc["ok"] == len(doc["results"])
    assert {"MX", "SPF", "DMARC", "MTA-STS", "TLS-RPT", "TLSA", "PTR"} <= {
        r["record"] for r in doc["results"]}


def test_check_missing_mx(env):
    c = check(env, "nomx.test")
    assert c.rc == 1, c
    # without the MX, "v=spf1 mx -all" no longer allows this server either
    assert c.problems() == ["MX nomx.test", "SPF nomx.test"], c
    assert c.message("MX nomx.test") == "missing: no MX record"
    assert c.fixes["MX nomx.test"] == "nomx.test. 3600 IN MX 10 mail.example.test."
    assert c.message("SPF nomx.test") == ("SPF does not allow this server's address "
                                          "127.0.0.1 (result fail)"), c
    assert c.fixes["SPF nomx.test"].startswith("add ip4:127.0.0.1 before -all"), c
    assert c.summary.endswith("2 problems"), c


def test_check_too_many_spf_lookups(env):
    c = check(env, "spf11.test")
    assert c.rc == 1, c
    assert c.problems() == ["SPF spf11.test"], c
    assert c.message("SPF spf11.test").startswith("too many SPF lookups: more than 10"), c
    assert "ip4:/ip6:" in c.fixes["SPF spf11.test"]


def test_check_wrong_mta_sts_id(env):
    c = check(env, "badsts.test")
    assert c.rc == 1, c
    assert c.problems() == ["MTA-STS _mta-sts.badsts.test"], c
    msg = c.message("MTA-STS _mta-sts.badsts.test")
    assert msg.startswith("MTA-STS id does not match the served policy: published "
                          "20240101000000, served "), c
    assert re.match(r'^_mta-sts\.badsts\.test\. 3600 IN TXT "v=STSv1; id=[0-9a-f]{32}"$',
                    c.fixes["MTA-STS _mta-sts.badsts.test"]), c


def test_check_dmarc_syntax(env):
    c = check(env, "baddmarc.test")
    assert c.rc == 1, c
    assert c.problems() == ["DMARC _dmarc.baddmarc.test"], c
    assert c.message("DMARC _dmarc.baddmarc.test") == (
        'syntax error in "v=DMARC1; p=maybe": p= must be none, quarantine or reject'), c


def test_check_wrong_tlsa_and_ptr(env):
    c = check(env, "other.test", env["conf2"])
    assert c.rc == 1, c
    port = env["srv"].port("smtp")
    assert c.problems() == ["PTR 127.0.0.1", "TLSA _%d._tcp.mx2.example.test" % port], c
    assert c.message("TLSA _%d._tcp.mx2.example.test" % port).startswith(
        "TLSA not matching the certificate"), c
    assert c.message("PTR 127.0.0.1") == ("PTR of 127.0.0.1 is mail.example.test, "
                                          "not the hostname mx2.example.test"), c
    assert c.fixes["PTR 127.0.0.1"] == ("ask the provider of 127.0.0.1 to set: "
                                        "1.0.0.127.in-addr.arpa. 3600 IN PTR mx2.example.test.")
    assert c.status("MX other.test") == "ok", c


def test_check_spf_syntax(env):
    c = check(env, "badspf.test")
    assert c.rc == 1, c
    assert c.problems() == ["SPF badspf.test"], c
    assert c.message("SPF badspf.test") == ('syntax error in the SPF record '
                                           '"v=spf1 mx foo:bar -all": unknown mechanism'), c
    assert c.fixes["SPF badspf.test"] == 'badspf.test. 3600 IN TXT "v=spf1 mx -all"'


def test_check_tlsrpt_syntax(env):
    c = check(env, "badrpt.test")
    assert c.rc == 1, c
    assert c.problems() == ["TLS-RPT _smtp._tls.badrpt.test"], c
    assert c.message("TLS-RPT _smtp._tls.badrpt.test").startswith(
        'syntax error in "v=TLSRPTv1; rua=mailto:a@badrpt.test; rua=mailto:b@badrpt.test": '), c
    assert c.fixes["TLS-RPT _smtp._tls.badrpt.test"] == (
        '_smtp._tls.badrpt.test. 3600 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@badrpt.test"')


def test_check_unknown_domain_and_usage(env):
    p = env["srv"].tern("dns", "check", "not-local.test", timeout=30)
    assert p.returncode == 1 and "not a local domain" in p.stderr, p
    p = env["srv"].tern("dns", "check", "example.test", "--bogus", timeout=30)
    assert p.returncode == 2, p
