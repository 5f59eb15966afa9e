"""Tern to Tern MTA-STS: the receiving Tern serves its own policy
(src/http, mta_sts.mode = "enforce", mx = mail.example.test) over HTTPS
with a certificate from a test CA made here, and a sending Tern, with the
test DNS publishing MX, mta-sts A and _mta-sts TXT records, fetches it from
the receiver's https listener (queue.mta_sts.port) and enforces it:

- sts1.test, MX mail.example.test (in the policy, certificate valid):
  delivered over verified TLS, after a fetch the receiver logged;
- sts2.test, MX mx.sts2.test (not in the policy): deferred without a
  connection, although the same server would accept it."""
import os
import subprocess
import tempfile

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from test_delivery import PASSWORD, find, queue_json, submit, wait_for

HOST = tern_harness.HOSTNAME   # mail.example.test
DOMAINS = ("sts1.test", "sts2.test")


def run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr)


@pytest.fixture(scope="module")
def pki():
    """A test CA and the receiver's certificate: its hostname and
    mta-sts.DOMAIN for each domain (docs/http.md)."""
    d = tempfile.mkdtemp(prefix="tern-it-http-sts-pki-")
    os.chmod(d, 0o755)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Tern test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    run(["openssl", "req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj",
         "/CN=" + HOST], d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:%s,%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n"
                % (HOST, ",".join("DNS:mta-sts.%s" % dom for dom in DOMAINS)))
    run(["openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf"], d)
    for f in ("ca.pem", "srv.pem"):
        os.chmod(os.path.join(d, f), 0o644)
    yield d
    subprocess.run(["rm", "-rf", d])


@pytest.fixture(scope="module")
def receiver(pki):
    s = tern_harness.TernServer(name="http-sts-recv")
    s.set("tls.cert", os.path.join(pki, "srv.pem"))
    s.set("tls.key", os.path.join(pki, "srv.key"))
    s.set("mta_sts.mode", "enforce")
    s.set("mta_sts.mx", [HOST])
    for d in DOMAINS:
        s.add_domain(d)
        s.add_user("user@" + d, PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def dns():
    d = testdns.TestDNS()
    d.zone("example.test", ["mail A 127.0.0.1"])
    mx = {"sts1.test": HOST + ".", "sts2.test": "mx"}
    for dom in DOMAINS:
        d.zone(dom, ["@ MX 10 %s" % mx[dom], "mx A 127.0.0.1", "mta-sts A 127.0.0.1",
                     "_mta-sts TXT \"v=STSv1; id=tern1;\""])
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def sender(receiver, dns, pki):
    s = tern_harness.TernServer(name="http-sts-send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    ca = os.path.join(pki, "ca.pem")
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=False))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  remote_port = %d;\n  ca_file = \"%s\";\n"
                "  mta_sts = { enabled = true; ca_file = \"%s\"; port = %d; timeout = 5; };\n"
                "};\n" % (receiver.port("smtp"), ca, ca, receiver.port("https")))
    s.start()
    yield s
    finish(s)


def test_policy_from_tern_enforced_and_delivered(sender, receiver):
    submit(sender, ["user@sts1.test"], "tern sts one")
    assert wait_for(lambda: find(receiver, "user@sts1.test", b"body of tern sts one")), \
        sender.log_tail()
    log = sender.log()
    assert "event=mta_sts_policy domain=sts1.test" in log or \
        "event=mta_sts_policy domain=\"sts1.test\"" in log, sender.log_tail()
    assert "tls=verify" in log
    # the policy came from the receiver's own https listener
    rlog = receiver.log()
    assert "mod=http listener=https ip=127.0.0.1 method=GET host=mta-sts.sts1.test" in rlog
    assert "path=/.well-known/mta-sts.txt status=200" in rlog


def test_policy_from_tern_mx_mismatch_defers(sender, receiver):
    submit(sender, ["user@sts2.test"], "tern sts two")
    q = wait_for(lambda: [m for m in queue_json(sender)
                          if m["recipients"][0]["address"] == "user@sts2.test"
                          and m["recipients"][0]["state"] == "deferred"])
    assert q, sender.log_tail()
    err = q[0]["recipients"][0]["last_error"]
    assert "does not match the MTA-STS policy" in err, err
    assert "result=mx-mismatch" in sender.log()
    assert find(receiver, "user@sts2.test", b"body of tern sts two") is None
