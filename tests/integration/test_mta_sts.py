"""MTA-STS (RFC 8461) end to end: a sending Tern delivers to a receiving
Tern (mail.example.test) through MX records in the test DNS; each
recipient domain publishes _mta-sts TXT and mta-sts.DOMAIN A records, and
its policy is served over HTTPS by a small Python server whose certificate
comes from a test CA made here with openssl (the sender's
queue.mta_sts.ca_file).  The sender verifies SMTP certificates against the
receiver's self-signed certificate (queue.ca_file), which names only
mail.example.test.

- enforce, MX mail.example.test (verifies): delivered; the policy is
  fetched once and then served from the cache;
- enforce, MX mx.sts-enf.test (the certificate does not match the name):
  deferred with the verification error, never sent in clear;
- testing, the same kind of MX: delivered, and the failure reported in the
  log (event=mta_sts_report);
- enforce, the MX not among the policy's mx patterns: deferred without a
  connection to it."""
import http.server
import os
import ssl
import subprocess
import tempfile
import threading

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from test_delivery import PASSWORD, find, queue_json, submit, wait_for

HOST = tern_harness.HOSTNAME   # mail.example.test, the receiver's certificate name

POLICIES = {
    "sts-ok.test": "version: STSv1\r\nmode: enforce\r\nmx: %s\r\nmax_age: 86400\r\n" % HOST,
    "sts-enf.test": "version: STSv1\nmode: enforce\nmx: mx.sts-enf.test\nmax_age: 86400\n",
    "sts-tst.test": "version: STSv1\nmode: testing\nmx: *.sts-tst.test\nmax_age: 86400\n",
    "sts-mis.test": "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n",
}
MX = {
    "sts-ok.test": HOST + ".",
    "sts-enf.test": "mx",
    "sts-tst.test": "mx",
    "sts-mis.test": HOST + ".",
}


def run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr)


@pytest.fixture(scope="module")
def pki():
    """A test CA and a certificate for every mta-sts.DOMAIN it signs."""
    d = tempfile.mkdtemp(prefix="tern-it-sts-pki-")
    os.chmod(d, 0o755)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Tern test STS CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    run(["openssl", "req", *ec, "-keyout", "srv.key", "-out", "srv.csr",
         "-subj", "/CN=mta-sts"], d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                % ",".join("DNS:mta-sts.%s" % dom for dom in POLICIES))
    run(["openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf"], d)
    os.chmod(os.path.join(d, "ca.pem"), 0o644)
    yield d
    subprocess.run(["rm", "-rf", d])


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    fetches = []

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        dom = host[len("mta-sts."):] if host.startswith("mta-sts.") else ""
        PolicyHandler.fetches.append(host)
        if self.path != "/.well-known/mta-sts.txt" or dom not in POLICIES:
            self.send_error(404)
            return
        body = POLICIES[dom].encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def https(pki):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PolicyHandler)
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
    s = tern_harness.TernServer(name="sts-recv")
    for d in POLICIES:
        s.add_domain(d)
        s.add_user("user@" + d, PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def dns():
    d = testdns.TestDNS()
    d.zone("example.test", ["mail A 127.0.0.1"])
    for dom in POLICIES:
        d.zone(dom, ["@ MX 10 %s" % MX[dom], "mx A 127.0.0.1", "mta-sts A 127.0.0.1",
                     "_mta-sts TXT \"v=STSv1; id=20261128T1;\""])
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def sender(receiver, dns, https, pki):
    s = tern_harness.TernServer(name="sts-send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=False))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  remote_port = %d;\n  ca_file = \"%s\";\n"
                "  mta_sts = { enabled = true; ca_file = \"%s\"; port = %d; timeout = 5; };\n"
                "};\n" % (receiver.port("smtp"), os.path.join(receiver.dir, "tls", "cert.pem"),
                          os.path.join(pki, "ca.pem"), https.server_address[1]))
    s.start()
    yield s
    finish(s)


def deferred(srv, rcpt):
    return wait_for(lambda: [m for m in queue_json(srv)
                             if m["recipients"][0]["address"] == rcpt
                             and m["recipients"][0]["state"] == "deferred"])


def test_enforce_valid_delivers_and_caches(sender, receiver):
    submit(sender, ["user@sts-ok.test"], "sts ok one")
    assert wait_for(lambda: find(receiver, "user@sts-ok.test", b"body of sts ok one")), \
        sender.log_tail()
    log = sender.log()
    assert "event=mta_sts_policy domain=sts-ok.test" in log or \
        "event=mta_sts_policy domain=\"sts-ok.test\"" in log
    assert "tls=verify" in log
    submit(sender, ["user@sts-ok.test"], "sts ok two")
    assert wait_for(lambda: find(receiver, "user@sts-ok.test", b"body of sts ok two"))
    assert PolicyHandler.fetches.count("mta-sts.sts-ok.test") == 1
    assert "source=cache" in sender.log()


def test_enforce_bad_certificate_defers(sender, receiver):
    submit(sender, ["user@sts-enf.test"], "sts enforce bad cert")
    q = deferred(sender, "user@sts-enf.test")
    assert q, sender.log_tail()
    err = q[0]["recipients"][0]["last_error"]
    assert "certificate" in err, err
    assert find(receiver, "user@sts-enf.test", b"body of sts enforce bad cert") is None
    assert "result=certificate-not-valid" in sender.log()


def test_testing_mode_delivers_and_reports(sender, receiver):
    submit(sender, ["user@sts-tst.test"], "sts testing")
    assert wait_for(lambda: find(receiver, "user@sts-tst.test", b"body of sts testing")), \
        sender.log_tail()
    log = [ln for ln in sender.log().splitlines() if "event=mta_sts_report" in ln]
    assert any("mode=testing" in ln and "certificate-not-valid" in ln for ln in log), log


def test_enforce_mx_mismatch_defers(sender, receiver):
    submit(sender, ["user@sts-mis.test"], "sts mismatch")
    q = deferred(sender, "user@sts-mis.test")
    assert q, sender.log_tail()
    err = q[0]["recipients"][0]["last_error"]
    assert "does not match the MTA-STS policy" in err, err
    assert "result=mx-mismatch" in sender.log()
    assert find(receiver, "user@sts-mis.test", b"body of sts mismatch") is None
