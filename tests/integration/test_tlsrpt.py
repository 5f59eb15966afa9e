"""SMTP TLS Reporting (RFC 8460) end to end: a sending Tern delivers to a
receiving Tern (mail.example.test) through MX records in the test DNS,
collects the TLS outcome of each attempt, and `tern tlsrpt send --now`
sends the reports to the rua of each domain's `_smtp._tls` record.

- sts-ok.test: MTA-STS enforce, the MX certificate verifies: delivered,
  one successful "sts" session;
- sts-bad.test: MTA-STS enforce, an MX whose name the certificate does not
  carry: deferred, "certificate-host-mismatch" failures;
- both publish rua=mailto:tlsrpt@b.test (a mailbox on the receiver): the
  reports arrive there as multipart/report mails whose gzip'd JSON
  attachment holds those counts and result types;
- plain.test: no policy (STARTTLS, opportunistic), rua=https:...: the
  report is POSTed (application/tlsrpt+gzip) to a small Python HTTPS
  server, with a "no-policy-found" success;
- dane.test: DNSSEC-signed, a TLSA record matching the receiver's key:
  delivered, a "tlsa" success; badtlsa.test: a TLSA record matching
  nothing: deferred, "tlsa-invalid" failures (both rua=mailto:);
- nope.test: results but no _smtp._tls record: nothing is sent, the rows
  are marked reported;
- the daily run: results collected "yesterday" (the sender started with
  TERN_CLOCK_OFFSET=-86400) are reported by the server itself after a
  restart at today's send_hour, without `tern tlsrpt send`.
(The TLSA records sit at _PORT._tcp.mx: the sender's queue.remote_port is
the receiver's high SMTP port.)
The MTA-STS policies and the HTTPS rua are served by one Python HTTPS
server whose certificate comes from a test CA made here with openssl."""
import email
import gzip
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from test_delivery import PASSWORD, find, queue_json, submit, wait_for

HOST = tern_harness.HOSTNAME   # mail.example.test, the receiver's certificate name

POLICIES = {
    "sts-ok.test": "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 86400\n" % HOST,
    "sts-bad.test": "version: STSv1\nmode: enforce\nmx: mx.sts-bad.test\nmax_age: 86400\n",
}
RUA_MAIL = "\"v=TLSRPTv1; rua=mailto:tlsrpt@b.test\""


def spki_sha256(cert_path):
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr)


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="tern-it-tlsrpt-pki-")
    os.chmod(d, 0o755)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Tern test TLSRPT CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    run(["openssl", "req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=web"], d)
    names = ["mta-sts.%s" % dom for dom in POLICIES] + ["reports.plain.test"]
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                % ",".join("DNS:" + n for n in names))
    run(["openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf"], d)
    os.chmod(os.path.join(d, "ca.pem"), 0o644)
    yield d
    subprocess.run(["rm", "-rf", d])


class Handler(http.server.BaseHTTPRequestHandler):
    posts = []

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        dom = host[len("mta-sts."):] if host.startswith("mta-sts.") else ""
        if self.path != "/.well-known/mta-sts.txt" or dom not in POLICIES:
            self.send_error(404)
            return
        body = POLICIES[dom].encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, 1 << 20))
        Handler.posts.append((self.path, self.headers.get("Content-Type"),
                              self.headers.get("Host"), body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def https(pki):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki, "srv.pem"), os.path.join(pki, "srv.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="tlsrpt-recv")
    for d in ("b.test", "plain.test", "nope.test", "dane.test", "badtlsa.test", *POLICIES):
        s.add_domain(d)
        s.add_user("user@" + d, PASSWORD)
    s.add_user("tlsrpt@b.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def dns(https, receiver):
    d = testdns.TestDNS()
    key = spki_sha256(os.path.join(receiver.dir, "tls", "cert.pem"))
    port = receiver.port("smtp")
    d.zone("dane.test", ["@ MX 10 mx", "mx A 127.0.0.1",
                         "_%d._tcp.mx TLSA 3 1 1 %s" % (port, key),
                         "_smtp._tls TXT " + RUA_MAIL], dnssec=True)
    d.zone("badtlsa.test", ["@ MX 10 mx", "mx A 127.0.0.1",
                            "_%d._tcp.mx TLSA 3 1 1 %s" % (port, "00" * 32),
                            "_smtp._tls TXT " + RUA_MAIL], dnssec=True)
    d.zone("example.test", ["mail A 127.0.0.1"])
    d.zone("b.test", ["@ MX 10 %s." % HOST])
    d.zone("sts-ok.test", ["@ MX 10 %s." % HOST, "mta-sts A 127.0.0.1",
                           "_mta-sts TXT \"v=STSv1; id=20261128T1;\"",
                           "_smtp._tls TXT " + RUA_MAIL])
    d.zone("sts-bad.test", ["@ MX 10 mx", "mx A 127.0.0.1", "mta-sts A 127.0.0.1",
                            "_mta-sts TXT \"v=STSv1; id=20261128T1;\"",
                            "_smtp._tls TXT " + RUA_MAIL])
    d.zone("plain.test", ["@ MX 10 %s." % HOST, "reports A 127.0.0.1",
                          "_smtp._tls TXT \"v=TLSRPTv1; rua=https://reports.plain.test:%d/tlsrpt\""
                          % https.server_address[1]])
    d.zone("nope.test", ["@ MX 10 %s." % HOST])
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def sender(receiver, dns, https, pki):
    s = tern_harness.TernServer(name="tlsrpt-send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=True))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  remote_port = %d;\n  ca_file = \"%s\";\n"
                "  mta_sts = { enabled = true; ca_file = \"%s\"; port = %d; timeout = 5; };\n"
                "};\n" % (receiver.port("smtp"), os.path.join(receiver.dir, "tls", "cert.pem"),
                          os.path.join(pki, "ca.pem"), https.server_address[1]))
        f.write("tlsrpt = {\n  organization = \"Tern Test Org\";\n"
                "  contact = \"tls-admin@a.test\";\n  sender = \"noreply-tlsrpt@a.test\";\n"
                "  ca_file = \"%s\";\n  timeout = 10;\n  send_hour = 0;\n};\n"
                % os.path.join(pki, "ca.pem"))
    s.start()
    yield s
    finish(s)


def results(srv):
    p = srv.tern("tlsrpt", "list", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def rows_for(srv, domain):
    return [r for r in results(srv) if r["policy_domain"] == domain]


def report_of(msg_bytes):
    """(headers message, parsed JSON) of a report mail."""
    m = email.message_from_bytes(msg_bytes)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "tlsrpt"
    parts = [p for p in m.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
    assert len(parts) == 1
    return m, json.loads(gzip.decompress(parts[0].get_payload(decode=True)))


def test_config_errors_name_the_line(sender):
    bad = os.path.join(sender.dir, "bad-tlsrpt.conf")
    with open(sender.conf) as f:
        text = f.read()
    with open(bad, "w") as f:
        f.write(text.replace("sender = \"noreply-tlsrpt@a.test\";", "sender = \"not an address\";"))
    p = tern_harness.run_tern(["config", "check"], conf=bad)
    assert p.returncode != 0 and "tlsrpt.sender" in p.stderr and "bad-tlsrpt.conf:" in p.stderr, \
        p.stderr
    with open(bad, "w") as f:
        f.write(text.replace("send_hour = 0;", "send_hour = 24;"))
    p = tern_harness.run_tern(["config", "check"], conf=bad)
    assert p.returncode != 0 and "send_hour" in p.stderr, p.stderr


def test_reports_by_mail_and_https(sender, receiver):
    submit(sender, ["user@sts-ok.test"], "tlsrpt ok")
    submit(sender, ["user@sts-bad.test"], "tlsrpt bad")
    submit(sender, ["user@plain.test"], "tlsrpt plain")
    submit(sender, ["user@nope.test"], "tlsrpt nope")
    submit(sender, ["user@dane.test"], "tlsrpt dane")
    submit(sender, ["user@badtlsa.test"], "tlsrpt badtlsa")
    for dom in ("sts-ok.test", "plain.test", "nope.test", "dane.test"):
        assert wait_for(lambda: find(receiver, "user@" + dom, b"body of tlsrpt")), \
            sender.log_tail()
    for rcpt in ("user@sts-bad.test", "user@badtlsa.test"):
        assert wait_for(lambda: [m for m in queue_json(sender)
                                 if m["recipients"][0]["address"] == rcpt
                                 and m["recipients"][0]["state"] == "deferred"]), \
            sender.log_tail()
    # the collector writes every few seconds
    assert wait_for(lambda: rows_for(sender, "sts-ok.test") and rows_for(sender, "sts-bad.test")
                    and rows_for(sender, "plain.test") and rows_for(sender, "nope.test")
                    and rows_for(sender, "dane.test") and rows_for(sender, "badtlsa.test")), \
        (results(sender), sender.log_tail())
    ok = rows_for(sender, "sts-ok.test")
    assert ok[0]["policy_type"] == "sts" and ok[0]["result_type"] == "success"
    assert ok[0]["mx_host"] == HOST and ok[0]["receiving_ip"] == "127.0.0.1"
    bad = rows_for(sender, "sts-bad.test")
    assert any(r["result_type"] == "certificate-host-mismatch" for r in bad), bad
    # the deferred message's retries stop adding while we report: hold it
    for m in queue_json(sender):
        assert sender.tern("queue", "hold", m["id"]).returncode == 0
    time.sleep(6)    # a last flush of what the held message's attempts added
    before = {r["policy_domain"]: r for r in results(sender)}
    def count(domain, result):
        return sum(r["count"] for r in results(sender)
                   if r["policy_domain"] == domain and r["result_type"] == result)
    bad_count = count("sts-bad.test", "certificate-host-mismatch")
    tlsa_bad = count("badtlsa.test", "tlsa-invalid")
    assert tlsa_bad >= 1, rows_for(sender, "badtlsa.test")

    # without --now, today's results are not due yet
    p = sender.tern("tlsrpt", "send")
    assert p.returncode == 0 and "0 domains" in p.stdout, (p.stdout, p.stderr)

    p = sender.tern("tlsrpt", "send", "--now", timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "6 domains, 5 reports sent, 1 without a TLS-RPT record" in p.stdout, p.stdout

    # the mail reports reach the receiver's tlsrpt@b.test
    raw = wait_for(lambda: find(receiver, "tlsrpt@b.test", b"TLS-Report-Domain: sts-ok.test"))
    assert raw, sender.log_tail()
    m, rep = report_of(raw)
    assert m["TLS-Report-Submitter"] == HOST
    assert m["Subject"].startswith("Report Domain: sts-ok.test Submitter: %s Report-ID: <" % HOST)
    assert rep["organization-name"] == "Tern Test Org"
    assert rep["contact-info"] == "tls-admin@a.test"
    assert rep["report-id"] and rep["date-range"]["start-datetime"].endswith("T00:00:00Z")
    pol = rep["policies"]
    assert len(pol) == 1 and pol[0]["policy"]["policy-type"] == "sts", rep
    assert pol[0]["policy"]["policy-domain"] == "sts-ok.test"
    assert "mode: enforce" in pol[0]["policy"]["policy-string"]
    assert pol[0]["policy"]["mx-host"] == [HOST]
    assert pol[0]["summary"]["total-successful-session-count"] >= 1
    assert pol[0]["summary"]["total-failure-session-count"] == 0

    raw = wait_for(lambda: find(receiver, "tlsrpt@b.test", b"TLS-Report-Domain: sts-bad.test"))
    assert raw, sender.log_tail()
    _, rep = report_of(raw)
    pol = [p for p in rep["policies"] if p["policy"]["policy-type"] == "sts"]
    assert pol, rep
    fails = pol[0]["failure-details"]
    mism = [f for f in fails if f["result-type"] == "certificate-host-mismatch"]
    assert mism and mism[0]["receiving-mx-hostname"] == "mx.sts-bad.test", fails
    assert mism[0]["receiving-ip"] == "127.0.0.1"
    assert mism[0]["failed-session-count"] == bad_count
    assert pol[0]["summary"]["total-failure-session-count"] >= bad_count
    assert pol[0]["summary"]["total-successful-session-count"] == 0

    # DANE: a tlsa policy with the MX host, success and tlsa-invalid
    raw = wait_for(lambda: find(receiver, "tlsrpt@b.test", b"TLS-Report-Domain: dane.test"))
    assert raw, sender.log_tail()
    _, rep = report_of(raw)
    pol = rep["policies"]
    assert len(pol) == 1 and pol[0]["policy"]["policy-type"] == "tlsa", rep
    assert pol[0]["policy"]["policy-string"][0].startswith("3 1 1 ")
    assert pol[0]["policy"]["mx-host"] == ["mx.dane.test"]
    assert pol[0]["summary"] == {"total-successful-session-count": 1,
                                 "total-failure-session-count": 0}
    raw = wait_for(lambda: find(receiver, "tlsrpt@b.test", b"TLS-Report-Domain: badtlsa.test"))
    assert raw, sender.log_tail()
    _, rep = report_of(raw)
    pol = rep["policies"]
    assert len(pol) == 1 and pol[0]["policy"]["policy-type"] == "tlsa", rep
    assert pol[0]["summary"]["total-failure-session-count"] == tlsa_bad
    assert [f["result-type"] for f in pol[0]["failure-details"]] == ["tlsa-invalid"]

    # the https: rua got a POST
    posts = [p for p in Handler.posts if p[0] == "/tlsrpt"]
    assert len(posts) == 1, Handler.posts
    path, ctype, host, body = posts[0]
    assert ctype == "application/tlsrpt+gzip"
    assert host.startswith("reports.plain.test")
    rep = json.loads(gzip.decompress(body))
    pol = rep["policies"]
    assert pol[0]["policy"]["policy-type"] == "no-policy-found", rep
    assert pol[0]["policy"]["policy-domain"] == "plain.test"
    assert pol[0]["summary"]["total-successful-session-count"] >= 1

    # everything sent is marked; a second run sends nothing
    assert all(r["reported"] for r in results(sender)
               if r["policy_domain"] in before and r["policy_domain"] != "b.test")
    p = sender.tern("tlsrpt", "send", "--now", timeout=60)
    assert p.returncode == 0
    assert "0 reports sent" in p.stdout, p.stdout
    assert len([p for p in Handler.posts if p[0] == "/tlsrpt"]) == 1


def test_daily_run_reports_yesterday(sender, receiver):
    day = int(time.time()) // 86400
    sender.stop()
    sender.start(env={"TERN_CLOCK_OFFSET": "-86400"})
    submit(sender, ["user@sts-ok.test"], "tlsrpt yesterday")
    assert wait_for(lambda: find(receiver, "user@sts-ok.test", b"body of tlsrpt yesterday")), \
        sender.log_tail()
    yesterday = time.strftime("%Y-%m-%d", time.gmtime((day - 1) * 86400))
    assert wait_for(lambda: [r for r in rows_for(sender, "sts-ok.test")
                             if r["day"] == yesterday and not r["reported"]]), results(sender)
    # back to today: the daily run (send_hour 0) reports yesterday by itself
    sender.stop()
    sender.start()
    name = b"!sts-ok.test!%d!%d.json.gz" % ((day - 1) * 86400, day * 86400 - 1)
    raw = wait_for(lambda: find(receiver, "tlsrpt@b.test", name), timeout=60)
    assert raw, sender.log_tail()
    _, rep = report_of(raw)
    assert rep["date-range"]["end-datetime"] == yesterday + "T23:59:59Z"
    assert rep["policies"][0]["summary"]["total-successful-session-count"] == 1
    assert wait_for(lambda: all(r["reported"] for r in rows_for(sender, "sts-ok.test")))
