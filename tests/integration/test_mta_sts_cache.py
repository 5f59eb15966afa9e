"""The MTA-STS policy cache survives a restart (RFC 8461 5.1): a sending
Tern fetches the enforce policy of sts-keep.test over HTTPS (a small
Python server, certificate from a test CA made here); the policy names
only mx.elsewhere.test while the domain's MX is mail.example.test, so
delivery is deferred ("does not match the MTA-STS policy").

Then the HTTPS server stops, the _mta-sts TXT record changes its id (a
second test DNS with the new id replaces the first in the sender's
config) and the sender restarts.  A new message to the domain finds a new
id, tries to refresh the policy, fails, and keeps enforcing the policy
cached in the store: deferred again, nothing delivered, and the log shows
the cached policy loaded and the failed fetch.  Without the store's cache
the restart would forget the policy and deliver in clear to the MX."""
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
from test_mta_sts import run

HOST = tern_harness.HOSTNAME   # mail.example.test, the receiver
DOMAIN = "sts-keep.test"
POLICY = "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n"


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="tern-it-stsc-pki-")
    os.chmod(d, 0o755)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Tern test STS cache CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    run(["openssl", "req", *ec, "-keyout", "srv.key", "-out", "srv.csr",
         "-subj", "/CN=mta-sts"], d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:mta-sts.%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % DOMAIN)
    run(["openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf"], d)
    os.chmod(os.path.join(d, "ca.pem"), 0o644)
    yield d
    subprocess.run(["rm", "-rf", d])


class Handler(http.server.BaseHTTPRequestHandler):
    fetches = []

    def do_GET(self):
        Handler.fetches.append(self.path)
        body = POLICY.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def make_dns(policy_id):
    d = testdns.TestDNS()
    d.zone("example.test", ["mail A 127.0.0.1"])
    d.zone(DOMAIN, ["@ MX 10 %s." % HOST, "mta-sts A 127.0.0.1",
                    "_mta-sts TXT \"v=STSv1; id=%s;\"" % policy_id])
    return d


def test_policy_enforced_from_store_after_restart(pki):
    receiver = tern_harness.TernServer(name="stsc-recv")
    receiver.add_domain(DOMAIN)
    receiver.add_user("user@" + DOMAIN, PASSWORD)
    receiver.start()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki, "srv.pem"), os.path.join(pki, "srv.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    https_up = True
    dns1, dns2 = make_dns("first1"), make_dns("second2")
    sender = None
    try:
        dns1.start()
        dns2.start()
        sender = tern_harness.TernServer(name="stsc-send")
        sender.add_domain("a.test")
        sender.add_user("alice@a.test", PASSWORD)
        conf1 = dns1.tern_config(timeout=3, dnssec=False)
        with open(sender.conf, "a") as f:
            f.write("\n" + conf1)
            f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                    "  remote_port = %d;\n  ca_file = \"%s\";\n"
                    "  mta_sts = { enabled = true; ca_file = \"%s\"; port = %d; timeout = 3; };\n"
                    "};\n" % (receiver.port("smtp"),
                              os.path.join(receiver.dir, "tls", "cert.pem"),
                              os.path.join(pki, "ca.pem"), srv.server_address[1]))
        sender.start()

        rcpt = "user@" + DOMAIN
        submit(sender, [rcpt], "before restart")
        q = wait_for(lambda: [m for m in queue_json(sender)
                              if m["recipients"][0]["state"] == "deferred"])
        assert q, sender.log_tail()
        assert "does not match the MTA-STS policy" in q[0]["recipients"][0]["last_error"]
        assert len(Handler.fetches) == 1
        # the policy reached the store
        assert wait_for(lambda: sender.query(
            "SELECT policy_id FROM mta_sts_policies WHERE domain = ?", (DOMAIN,))), \
            sender.log_tail()

        # the policy server goes away, the TXT id changes, Tern restarts
        srv.shutdown()
        srv.server_close()
        https_up = False
        sender.stop()
        with open(sender.conf) as f:
            text = f.read()
        assert conf1 in text
        with open(sender.conf, "w") as f:
            f.write(text.replace(conf1, dns2.tern_config(timeout=3, dnssec=False)))
        log_start = len(sender.log())
        sender.start()

        submit(sender, [rcpt], "after restart")
        def second_deferred():
            for m in queue_json(sender):
                r = m["recipients"][0]
                if r["state"] == "deferred" and r["attempts"] >= 1 and \
                        "after" in sender.tern("queue", "show", m["id"]).stdout:
                    return r
            return None
        r = wait_for(second_deferred)
        assert r, sender.log_tail()
        assert "does not match the MTA-STS policy" in r["last_error"], r
        log = sender.log()[log_start:]
        assert "event=mta_sts_cache_loaded" in log, log[-3000:]
        assert "event=mta_sts_fetch_failed" in log, log[-3000:]
        assert "result=mx-mismatch" in log
        assert find(receiver, rcpt, b"body of after restart") is None
        assert find(receiver, rcpt, b"body of before restart") is None
        assert len(Handler.fetches) == 1
    finally:
        if https_up:
            srv.shutdown()
            srv.server_close()
        if sender is not None:
            finish(sender)
        finish(receiver)
        dns1.cleanup()
        dns2.cleanup()
