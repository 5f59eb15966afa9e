"""The OpenSPF RFC 7208 test suite (../shared/testdata/spf/rfc7208-tests.yml)
run against Tern's SPF engine (src/mailauth/spf.c).

Each YAML case becomes one pytest case: its section's zone data is written to
a small zone file and build/tests/test-spf evaluates check_host() over an
in-memory DNS built from it, once with immediate and once with deferred DNS
answers. The result must be one of the case's results; the explanation must
match when the case gives one other than DEFAULT.

A second pass runs every case again through the real test DNS
(tests/harness/testdns.py): each section's zone data becomes nsd's root zone
"." (TXT strings escaped byte by byte, SPF type 99 records, A, AAAA, MX, PTR,
CNAME), and build/tests/test-spf --dns-config evaluates through Tern's
resolver (src/dns) and its SPF adapter (src/mailauth/spf-dns.c).  The
resolver asks a single address: the harness's responder, which stays silent
for the TIMEOUT names (for the query types not listed before TIMEOUT, as the
in-memory zone does) and passes every other query to nsd.  The reverse names
are stub zones of their own so that the resolver's built-in answers for
private and documentation address ranges do not hide them.

Run directly (/usr/bin/python3 tests/integration/test_spf_suite.py) for the summary
lines "spf: N passed, N failed" and "spf (test DNS): N passed, N failed".
"""
import os
import socket
import subprocess
import sys
import tempfile

import pytest

import yaml  # noqa: E402 (python3-yaml, scripts/deps.sh)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = os.path.join(os.environ.get("TERN_SHARED_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata")),
                     "spf", "rfc7208-tests.yml")


def driver_path():
    tern = os.environ.get("TERN_BIN")
    if tern:
        path = os.path.join(os.path.dirname(tern), "tests", "test-spf")
        if os.path.exists(path):
            return path
    return os.path.join(ROOT, "build", "tests", "test-spf")


def zone_lines(zonedata):
    """Zone file lines for one section: NAME TAB TYPE TAB VALUE."""
    lines = []
    for name, entries in (zonedata or {}).items():
        entries = entries or []
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        for e in entries:
            if e == "TIMEOUT":
                lines.append((name, "TIMEOUT", "-"))
                continue
            for typ, value in e.items():
                if typ == "SPF":
                    # RFC 7208 dropped type 99: serve it as TXT unless the name
                    # has TXT records of its own (or TXT: NONE).
                    if has_txt:
                        continue
                    typ = "TXT"
                if typ == "TXT":
                    if value == "NONE":
                        continue
                    if isinstance(value, list):
                        value = "".join(value)
                    value = value.encode("utf-8").hex()
                elif typ == "MX":
                    value = "%s %s" % (value[0], value[1])
                lines.append((name, typ, str(value)))
    return "".join("%s\t%s\t%s\n" % line for line in lines)


def load_cases():
    with open(SUITE, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    cases = []
    for doc in docs:
        zone = zone_lines(doc.get("zonedata"))
        for name, case in doc["tests"].items():
            cases.append((name, zone, case))
    return cases


def evaluate(zone, case, asynchronous):
    with tempfile.NamedTemporaryFile("w", suffix=".zone", delete=False) as f:
        f.write(zone)
        path = f.name
    try:
        args = [driver_path(), "--zone", path, "--ip", case["host"],
                "--sender", case.get("mailfrom") or "", "--helo", case.get("helo") or ""]
        if asynchronous:
            args.append("--async")
        out = subprocess.run(args, capture_output=True, timeout=20)
    finally:
        os.unlink(path)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    result, _, explanation = out.stdout.decode("utf-8", errors="replace").rstrip("\n").partition("\t")
    return result, explanation


def check(zone, case):
    """Return None when the case passes, else a description of the failure."""
    expected = case["result"]
    if not isinstance(expected, list):
        expected = [expected]
    for asynchronous in (False, True):
        result, explanation = evaluate(zone, case, asynchronous)
        if result not in expected:
            return "result %s, expected %s (async=%s)" % (result, "/".join(expected), asynchronous)
        want = case.get("explanation")
        # Case-insensitive: the suite writes %{i} nibbles of IPv6 in upper
        # case (pyspf), Tern in lower case as RFC 7208 section 7.4 shows;
        # DNS names compare without case (docs/spf.md).
        if want and want != "DEFAULT" and result == "fail" and explanation.lower() != want.lower():
            return "explanation %r, expected %r" % (explanation, want)
    return None


CASES = load_cases() if os.path.exists(SUITE) else []

# ---- the second pass: through the real test DNS ----------------------------

HARNESS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)

RRTYPE = {"A": 1, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SPF": 99}
DNS_TIMEOUT = 1     # seconds: the TIMEOUT cases wait this long


def master_name(name):
    """An absolute master-file name, every byte outside [A-Za-z0-9_-]
    escaped as \\DDD (RFC 1035 5.1); "" is the root."""
    name = name.rstrip(".")
    if not name:
        return "."
    out = []
    for label in name.split("."):
        out.append("".join(chr(b) if chr(b).isalnum() and b < 128 or b in b"-_" else "\\%03d" % b
                           for b in label.encode("utf-8")))
    return ".".join(out) + "."


def master_txt(strings):
    """TXT/SPF rdata: each string quoted, cut into 255-byte pieces, bytes
    outside printable ASCII and the quote and backslash escaped."""
    out = []
    for s in strings or [""]:     # no strings at all cannot be served: one empty one
        data = s.encode("utf-8")
        pieces = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
        for piece in pieces:
            out.append('"' + "".join("\\%03d" % b if b < 0x20 or b >= 0x7F or b in b'"\\'
                                     else chr(b) for b in piece) + '"')
    return " ".join(out)


def scenario_zone(zonedata):
    """(records, silent rules, reverse names) for one section.  An SPF
    entry is served as type SPF and, unless the name has TXT entries of its
    own (or TXT: NONE), as TXT too, as the in-memory run does.  TIMEOUT
    silences the name for every query type not listed before it."""
    records, rules, reverse = [], [], []
    for name, entries in (zonedata or {}).items():
        entries = entries or []
        owner = master_name(name)
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        listed = set()
        if name.lower().rstrip(".").endswith(".arpa"):
            reverse.append(name.rstrip("."))
        for e in entries:
            if e == "TIMEOUT":
                rules.append((name.rstrip(".").lower(), listed.copy()))
                continue
            for typ, value in e.items():
                if typ in ("TXT", "SPF"):
                    if value == "NONE":
                        continue
                    strings = value if isinstance(value, list) else [value]
                    types = ["SPF"] if typ == "SPF" else ["TXT"]
                    if typ == "SPF" and not has_txt:
                        types.append("TXT")
                    for t in types:
                        records.append("%s IN %s %s" % (owner, t, master_txt(strings)))
                        listed.add(RRTYPE[t])
                    continue
                if typ in ("A", "AAAA"):
                    try:
                        socket.inet_pton(socket.AF_INET if typ == "A" else socket.AF_INET6, value)
                    except OSError:
                        continue
                    rdata = value
                elif typ == "MX":
                    rdata = "%d %s" % (int(value[0]), master_name(str(value[1])))
                elif typ in ("PTR", "CNAME"):
                    rdata = master_name(value)
                else:
                    continue
                records.append("%s IN %s %s" % (owner, typ, rdata))
                listed.add(RRTYPE[typ])
    return records, rules, reverse


def load_scenarios():
    with open(SUITE, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return [(i, doc.get("zonedata"), doc["tests"]) for i, doc in enumerate(docs)]


class ScenarioDNS:
    """The test DNS of one section, started on first use; one at a time."""

    def __init__(self):
        self.index = None
        self.dns = None
        self.conf = None

    def get(self, index, zonedata):
        if index == self.index:
            return self.conf
        self.stop()
        import testdns
        records, rules, reverse = scenario_zone(zonedata)
        d = testdns.TestDNS()
        d.zone(".", records)
        for name, listed in rules:
            d.responder(name, "silent", exact=True, except_qtypes=listed)
        d.relay = True
        d.start()
        server = "127.0.0.1@%d" % d.responder_port
        stubs = ["."] + reverse
        assert len(stubs) <= 32, "more stub zones than tern.conf allows"
        conf = os.path.join(d.dir, "tern.conf")
        with open(conf, "w") as f:
            f.write('hostname = "rx.example";\ndns = {\n  mode = "stub";\n  dnssec = false;\n'
                    '  timeout = %d;\n  stub = (\n' % DNS_TIMEOUT)
            f.write(",\n".join('    { zone = "%s"; servers = [ "%s" ]; }' % (z, server)
                               for z in stubs))
            f.write("\n  );\n};\n")
        self.index, self.dns, self.conf = index, d, conf
        return conf

    def stop(self):
        if self.dns is not None:
            self.dns.cleanup()
        self.index = self.dns = self.conf = None


def evaluate_dns(conf, case):
    args = [driver_path(), "--dns-config", conf, "--ip", case["host"],
            "--sender", case.get("mailfrom") or "", "--helo", case.get("helo") or ""]
    out = subprocess.run(args, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    result, _, explanation = out.stdout.decode("utf-8", errors="replace").rstrip("\n").partition("\t")
    return result, explanation


def judge(case, result, explanation):
    expected = case["result"]
    if not isinstance(expected, list):
        expected = [expected]
    if result not in expected:
        return "result %s, expected %s" % (result, "/".join(expected))
    want = case.get("explanation")
    if want and want != "DEFAULT" and result == "fail" and explanation.lower() != want.lower():
        return "explanation %r, expected %r" % (explanation, want)
    return None


def check_dns(sdns, index, zonedata, case):
    """None when the case passes through the test DNS, else the failure."""
    result, explanation = evaluate_dns(sdns.get(index, zonedata), case)
    return judge(case, result, explanation)


SCENARIOS = load_scenarios() if os.path.exists(SUITE) else []
DNS_CASES = [(name, index, zonedata, case) for index, zonedata, tests in SCENARIOS
             for name, case in tests.items()]


@pytest.fixture(scope="module")
def scenario_dns():
    sdns = ScenarioDNS()
    yield sdns
    sdns.stop()


@pytest.mark.skipif(not CASES, reason="SPF suite data not found")
def test_suite_size():
    assert len(CASES) == 203


@pytest.mark.parametrize("name,zone,case", CASES, ids=[c[0] for c in CASES])
def test_spf_case(name, zone, case):
    problem = check(zone, case)
    assert problem is None, "%s: %s" % (name, problem)


@pytest.mark.skipif(not DNS_CASES, reason="SPF suite data not found")
def test_dns_suite_size():
    assert len(DNS_CASES) == 203


@pytest.mark.parametrize("name,index,zonedata,case", DNS_CASES,
                         ids=["dns-" + c[0] for c in DNS_CASES])
def test_spf_case_dns(scenario_dns, name, index, zonedata, case):
    problem = check_dns(scenario_dns, index, zonedata, case)
    assert problem is None, "%s (test DNS): %s" % (name, problem)


if __name__ == "__main__":
    passed = failed = 0
    for name, zone, case in CASES:
        problem = check(zone, case)
        if problem:
            failed += 1
            print("FAIL %s: %s" % (name, problem))
        else:
            passed += 1
    print("spf: %d passed, %d failed" % (passed, failed))
    dpassed = dfailed = 0
    sdns = ScenarioDNS()
    try:
        for name, index, zonedata, case in DNS_CASES:
            problem = check_dns(sdns, index, zonedata, case)
            if problem:
                dfailed += 1
                print("FAIL (test DNS) %s: %s" % (name, problem))
            else:
                dpassed += 1
    finally:
        sdns.stop()
    print("spf (test DNS): %d passed, %d failed" % (dpassed, dfailed))
    sys.exit(1 if failed or dfailed else 0)
