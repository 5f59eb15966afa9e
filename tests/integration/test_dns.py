"""Tern's resolver (src/dns over libunbound) against the test DNS: nsd
serving plain and DNSSEC-signed zones on a loopback port, and the harness's
responder answering SERVFAIL or nothing.  Driven through
`tern dns lookup TYPE NAME`, which uses the resolver exactly as delivery
does.  Only deterministic facts are checked: the order among MX hosts of
equal preference is random, so only their set is (the shuffle itself is
unit-tested with an injected random source).
"""
import os
import sys
import time

import pytest

HARNESS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)

import tern as tern_harness  # noqa: E402
import testdns  # noqa: E402

TLSA_DATA = "8f" * 32
TIMEOUT = 2


@pytest.fixture(scope="module")
def dns():
    d = testdns.TestDNS()
    d.zone("example.test", [
        "@ MX 20 mx2", "@ MX 10 mx1", "@ MX 30 mxa", "@ MX 30 mxb", "@ MX 40 MX1",
        "mx1 A 192.0.2.1", "mx2 A 192.0.2.2",
        "implicit A 192.0.2.5", "implicit AAAA 2001:db8::5",
        "nullmx MX 0 .",
        "alias CNAME host", "host A 192.0.2.7", "host AAAA 2001:db8::7",
        'txt TXT "v=spf1 " "ip4:192.0.2.0/24 -all"',
        'txt TXT "second"',
        'noaddr TXT "no mx, no address"',
    ])
    d.zone("signed.test", [
        "@ MX 10 mx", "mx A 192.0.2.9",
        "_25._tcp.mx TLSA 3 1 1 %s" % TLSA_DATA,
        "implicit A 192.0.2.10",
    ], dnssec=True)
    d.zone("bogus.test", ["@ MX 10 mx", "mx A 192.0.2.11",
                          "_25._tcp.mx TLSA 3 1 1 %s" % TLSA_DATA], dnssec="wrong-key")
    d.responder("fail.test", "servfail")
    d.responder("silent.test", "silent")
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def srv(dns):
    s = tern_harness.TernServer(name="dns")
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=TIMEOUT))
    yield s
    s.cleanup()


class Lookup:
    def __init__(self, p):
        self.rc = p.returncode
        self.stdout = p.stdout
        self.stderr = p.stderr
        self.status = None
        self.dnssec = None
        self.records = []
        self.fields = {}
        for ln in p.stdout.splitlines():
            if ln.startswith("status: "):
                self.status = ln.split(": ", 1)[1]
            elif ln.startswith("dnssec: "):
                self.dnssec = ln.split(": ", 1)[1]
            elif ": " in ln:
                k, v = ln.split(": ", 1)
                self.fields[k] = v
            elif ln:
                self.records.append(ln)

    def __repr__(self):
        return "rc=%d stdout=%r stderr=%r" % (self.rc, self.stdout, self.stderr)


def lookup(srv, rtype, name, *extra):
    return Lookup(srv.tern("dns", "lookup", rtype, name, *extra, timeout=30))


def test_mx_preference_order(srv):
    r = lookup(srv, "MX", "example.test")
    assert r.rc == 0, r
    assert r.status == "ok"
    assert r.records[:2] == ["MX 10 mx1.example.test", "MX 20 mx2.example.test"], r
    # equal preferences: both present after the lower ones, order random
    assert sorted(r.records[2:]) == ["MX 30 mxa.example.test", "MX 30 mxb.example.test"], r
    # MX1 at 40 is the same host as mx1 at 10: listed once
    assert len(r.records) == 4
    assert r.dnssec == "insecure"
    assert "implicit" not in r.fields


def test_implicit_mx(srv):
    r = lookup(srv, "MX", "implicit.example.test")
    assert r.rc == 0, r
    assert r.fields.get("implicit") == "yes"
    assert r.records == ["MX 0 implicit.example.test"]


def test_null_mx(srv):
    r = lookup(srv, "MX", "nullmx.example.test")
    assert r.rc == 1, r
    assert r.status == "null-mx"
    assert r.records == []
    assert "null MX" in r.stderr


def test_nxdomain(srv):
    r = lookup(srv, "MX", "nope.example.test")
    assert r.rc == 1, r
    assert r.status == "nxdomain"
    assert "does not exist" in r.stderr


def test_no_mx_no_address(srv):
    r = lookup(srv, "MX", "noaddr.example.test")
    assert r.rc == 1, r
    assert r.status == "nodata"


def test_cname_to_address(srv):
    r = lookup(srv, "A", "alias.example.test")
    assert r.rc == 0, r
    assert r.fields.get("canonical") == "host.example.test"
    assert r.records == ["A 192.0.2.7"]


def test_addresses_ipv6_first(srv):
    r = lookup(srv, "ADDR", "host.example.test")
    assert r.rc == 0, r
    assert r.records == ["AAAA 2001:db8::7", "A 192.0.2.7"]
    r = lookup(srv, "AAAA", "mx1.example.test")
    assert r.rc == 1 and r.status == "nodata", r


def test_txt_strings_joined(srv):
    r = lookup(srv, "TXT", "txt.example.test")
    assert r.rc == 0, r
    assert sorted(r.records) == ['TXT "second"', 'TXT "v=spf1 ip4:192.0.2.0/24 -all"']


def test_servfail_is_temporary(srv):
    t0 = time.monotonic()
    r = lookup(srv, "MX", "fail.test")
    assert r.rc == 1, r
    assert r.status == "tempfail"
    assert "SERVFAIL" in r.stderr
    assert time.monotonic() - t0 < TIMEOUT + 3


def test_silent_server_times_out(srv):
    t0 = time.monotonic()
    r = lookup(srv, "MX", "silent.test")
    took = time.monotonic() - t0
    assert r.rc == 1, r
    assert r.status == "tempfail"
    assert "timeout" in r.stderr
    assert TIMEOUT - 0.5 <= took < TIMEOUT + 3 * tern_harness.SCALE


def test_name_outside_stub_zones(srv):
    r = lookup(srv, "MX", "example.org")
    assert r.rc == 1 and r.status == "tempfail", r
    assert "outside" in r.stderr


def test_dnssec_signed_zone_secure(srv):
    r = lookup(srv, "MX", "signed.test")
    assert r.rc == 0, r
    assert r.records == ["MX 10 mx.signed.test"]
    assert r.dnssec == "secure"
    r = lookup(srv, "A", "mx.signed.test")
    assert r.records == ["A 192.0.2.9"] and r.dnssec == "secure", r
    # a validated denial is secure too; implicit MX over a secure denial
    r = lookup(srv, "MX", "nope.signed.test")
    assert r.status == "nxdomain" and r.dnssec == "secure", r
    r = lookup(srv, "MX", "implicit.signed.test")
    assert r.rc == 0 and r.fields.get("implicit") == "yes" and r.dnssec == "secure", r


def test_tlsa_secure(srv):
    r = lookup(srv, "TLSA", "mx.signed.test")
    assert r.rc == 0, r
    assert r.records == ["TLSA 3 1 1 " + TLSA_DATA]
    assert r.dnssec == "secure"
    r = lookup(srv, "TLSA", "mx.signed.test", "--port", "587")
    assert r.status == "nxdomain" and r.dnssec == "secure", r


def test_unsigned_tlsa_insecure(srv):
    r = lookup(srv, "TLSA", "mx1.example.test")
    assert r.status == "nxdomain" and r.dnssec == "insecure", r


@pytest.mark.parametrize("rtype,name", [("MX", "bogus.test"), ("A", "mx.bogus.test"),
                                        ("TLSA", "mx.bogus.test")])
def test_bogus_never_secure(srv, rtype, name):
    r = lookup(srv, rtype, name)
    assert r.rc == 1, r
    assert r.status == "bogus"
    assert r.dnssec != "secure"
    assert r.records == []
    assert "DNSSEC validation failed" in r.stderr


def test_config_errors_name_the_line(srv):
    conf = os.path.join(srv.dir, "bad-dns.conf")
    with open(conf, "w") as f:
        f.write('hostname = "mail.example.test";\ndns = {\n  mode = "stub";\n'
                '  stub = ( { zone = "x.test"; servers = [ "127.0.0.1@70000" ]; } );\n};\n')
    p = tern_harness.run_tern(["dns", "lookup", "MX", "x.test"], conf=conf)
    assert p.returncode == 1
    assert "bad-dns.conf:4:" in p.stderr, p.stderr


def test_usage_errors(srv):
    p = srv.tern("dns", "lookup", "SRV", "example.test")
    assert p.returncode == 2
    assert "unknown record type" in p.stderr
    p = srv.tern("dns", "resolve", "x")
    assert p.returncode == 2
