"""The HTTP and HTTPS listeners (src/http, docs/http.md) against a running
Tern, with curl and Python's http.client/urllib:

- the MTA-STS policy at https://mta-sts.DOMAIN/.well-known/mta-sts.txt,
  byte for byte, for a local domain (any case, with or without a port in
  Host), 404 for other hosts and paths;
- /health on both listeners; 405 for POST; HEAD;
- plain http redirects to https (RFC 8461 3.3: the policy only over HTTPS);
- an oversize header is refused;
- the per-IP connection limit, released when connections close;
- SIGHUP: the new worker serves the changed policy.

The server's certificate is made here with openssl for mail.example.test,
mta-sts.example.test and 127.0.0.1, and every client verifies it."""
import hashlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest

import tern as tern_harness
from conftest import finish

POLICY = (b"version: STSv1\r\nmode: testing\r\nmx: mail.example.test\r\n"
          b"max_age: 604800\r\n")
PATH = "/.well-known/mta-sts.txt"


def make_cert(d):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem"),
         "-days", "2", "-subj", "/CN=mail.example.test",
         "-addext", "subjectAltName=DNS:mail.example.test,DNS:mta-sts.example.test,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    os.chmod(os.path.join(d, "cert.pem"), 0o644)
    return os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")


def start_server(name, config=None):
    srv = tern_harness.TernServer(name=name)
    cert, key = make_cert(srv.dir)
    srv.set("tls.cert", cert)
    srv.set("tls.key", key)
    for k, v in (config or {}).items():
        srv.set(k, v)
    srv.add_domain("example.test")
    srv.start()
    srv.cert = cert
    return srv


@pytest.fixture(scope="module")
def web():
    srv = start_server("http")
    yield srv
    finish(srv)


def tls_context(srv):
    ctx = ssl.create_default_context(cafile=srv.cert)
    return ctx


def https_request(srv, method, path, host, headers=None, sni="mta-sts.example.test", body=None):
    """One request over a verified TLS connection to the https listener,
    with any Host header; returns (status, headers dict lowercased, body)."""
    ctx = tls_context(srv)
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port("https"), timeout=10, context=ctx)
    # verify against the SNI name, whatever Host says
    conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port("https")),
                                                         timeout=10), server_hostname=sni)
    h = {"Host": host}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    conn.close()
    return r.status, hdrs, data


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                       timeout=30)
    return p


def test_policy_curl(web):
    port = web.port("https")
    hdr = os.path.join(web.dir, "curl-headers")
    p = curl("--cacert", web.cert, "--resolve", "mta-sts.example.test:%d:127.0.0.1" % port,
             "-D", hdr, "https://mta-sts.example.test:%d%s" % (port, PATH))
    assert p.returncode == 0, p.stderr
    assert p.stdout == POLICY
    with open(hdr, newline="") as f:
        head = f.read().lower()
    assert head.startswith("http/1.1 200")
    assert "content-type: text/plain\r\n" in head
    assert "server:" not in head
    # the id to publish is logged, and is the SHA-256 of the served text
    want = hashlib.sha256(POLICY).hexdigest()[:32]
    assert "event=mta_sts_published mode=testing mx_count=1 max_age=604800 id=%s" % want \
        in web.log()


def test_policy_host_forms(web):
    for host in ("MTA-STS.Example.TEST", "mta-sts.example.test:%d" % web.port("https"),
                 "mta-sts.example.test."):
        st, h, body = https_request(web, "GET", PATH, host)
        assert (st, body) == (200, POLICY), host
        assert h["content-type"] == "text/plain"


def test_policy_not_found(web):
    for host in ("mta-sts.unknown.test", "example.test", "mail.example.test",
                 "mta-sts.", "127.0.0.1", "mta-sts.example.test:x"):
        st, _, _ = https_request(web, "GET", PATH, host)
        assert st == 404, host
    st, _, _ = https_request(web, "GET", "/.well-known/other.txt", "mta-sts.example.test")
    assert st == 404
    # unknown domain through curl as well
    port = web.port("https")
    p = curl("-k", "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
             "mta-sts.unknown.test:%d:127.0.0.1" % port,
             "https://mta-sts.unknown.test:%d%s" % (port, PATH))
    assert p.stdout == b"404"


def test_policy_head(web):
    st, h, body = https_request(web, "HEAD", PATH, "mta-sts.example.test")
    assert st == 200 and body == b""
    assert h["content-length"] == str(len(POLICY))


def test_health_both_listeners(web):
    ctx = tls_context(web)
    with urllib.request.urlopen("https://127.0.0.1:%d/health" % web.port("https"),
                                context=ctx, timeout=10) as r:
        assert r.status == 200 and r.read() == b"ok\n"
    with urllib.request.urlopen("http://127.0.0.1:%d/health" % web.port("http"),
                                timeout=10) as r:
        assert r.status == 200 and r.read() == b"ok\n"
        assert r.headers["Cache-Control"] == "no-store"


def test_policy_urllib(web):
    req = urllib.request.Request("https://127.0.0.1:%d%s" % (web.port("https"), PATH),
                                 headers={"Host": "mta-sts.example.test"})
    with urllib.request.urlopen(req, context=tls_context(web), timeout=10) as r:
        assert r.status == 200
        assert r.headers.get_content_type() == "text/plain"
        assert r.read() == POLICY


def test_method_not_allowed(web):
    st, h, _ = https_request(web, "POST", PATH, "mta-sts.example.test", body=b"x=1")
    assert st == 405
    assert h["allow"] == "GET, HEAD"
    p = curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
             "http://127.0.0.1:%d/health" % web.port("http"))
    assert p.stdout == b"405"


def test_http_redirects_to_https(web):
    hport, sport = web.port("http"), web.port("https")
    p = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--resolve",
             "mta-sts.example.test:%d:127.0.0.1" % hport,
             "http://mta-sts.example.test:%d%s" % (hport, PATH))
    assert p.stdout.decode() == "301 https://mta-sts.example.test:%d%s" % (sport, PATH)
    # following it ends at the policy, verified
    p = curl("-L", "--cacert", web.cert, "--resolve", "mta-sts.example.test:%d:127.0.0.1" % hport,
             "--resolve", "mta-sts.example.test:%d:127.0.0.1" % sport,
             "http://mta-sts.example.test:%d%s" % (hport, PATH))
    assert p.returncode == 0, p.stderr
    assert p.stdout == POLICY
    # the policy itself is never served over plain http
    c = http.client.HTTPConnection("127.0.0.1", hport, timeout=10)
    c.request("GET", PATH, headers={"Host": "mta-sts.example.test"})
    r = c.getresponse()
    assert r.status == 301 and r.read() != POLICY
    c.close()
    # a Host that is not a host name is not copied into Location
    c = http.client.HTTPConnection("127.0.0.1", hport, timeout=10)
    c.request("GET", "/x", headers={"Host": "evil\"<x>"})
    r = c.getresponse()
    r.read()
    assert r.status == 301
    assert r.getheader("Location") == "https://mail.example.test:%d/x" % sport
    c.close()


def test_oversize_header_refused(web):
    port = web.port("https")
    p = curl("--cacert", web.cert, "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
             "mta-sts.example.test:%d:127.0.0.1" % port, "-H", "X-Big: " + "a" * 20000,
             "https://mta-sts.example.test:%d%s" % (port, PATH))
    code = p.stdout.decode()
    assert code in ("413", "400", "431", "000"), code
    assert code != "200"
    # the server still answers afterwards
    st, _, body = https_request(web, "GET", PATH, "mta-sts.example.test")
    assert (st, body) == (200, POLICY)


def test_connection_limit_per_ip():
    srv = start_server("http-limit", {"limits.connections_per_ip": 3})
    try:
        port = srv.port("http")
        # the harness's readiness check (an SMTP connection) counts too until
        # the server has seen it close: wait for that (bounded)
        tern_harness.wait_for(lambda: "event=disconnect" in srv.log(), timeout=5)
        conns = []
        for _ in range(3):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/health")
            r = c.getresponse()
            assert r.status == 200
            r.read()
            conns.append(c)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/health")
        r = c.getresponse()
        assert r.status == 503
        r.read()
        c.close()
        conns.pop().close()
        # the closed connection's slot comes back (bounded wait)
        ok = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not ok:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/health")
            r = c.getresponse()
            r.read()
            ok = r.status == 200
            c.close()
            if not ok:
                time.sleep(0.1)
        assert ok
        for c in conns:
            c.close()
        # nothing leaks: many short connections in a row all succeed
        for _ in range(10):
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=10) as r:
                assert r.status == 200
    finally:
        finish(srv)


def test_reload_serves_new_policy():
    srv = start_server("http-hup")
    try:
        st, _, body = https_request(srv, "GET", PATH, "mta-sts.example.test")
        assert (st, body) == (200, POLICY)
        srv.set("mta_sts.mode", "enforce")
        srv.set("mta_sts.mx", ["mail.example.test", "*.example.test"])
        srv.set("mta_sts.max_age", 1209600)
        srv.signal(signal.SIGHUP)
        want = (b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\n"
                b"mx: *.example.test\r\nmax_age: 1209600\r\n")
        got = None
        deadline = time.monotonic() + 10 * tern_harness.SCALE
        while time.monotonic() < deadline:
            try:
                st, _, got = https_request(srv, "GET", PATH, "mta-sts.example.test")
            except OSError:
                got = None
            if got == want:
                break
            time.sleep(0.2)
        assert got == want
    finally:
        finish(srv)
