"""MTA-STS policy hosting for tests (RFC 8461 3.2-3.3): a test CA made with
openssl, a certificate it signs for mta-sts.DOMAIN of every domain given,
and a small threaded HTTPS server (standard library) that serves
/.well-known/mta-sts.txt for those domains by the Host header and records
every fetch.

    pki = make_pki(["a.test", "b.test"])     # a folder: ca.pem, srv.pem, srv.key
    srv = PolicyServer(pki, {"a.test": "version: STSv1\\n..."}, host, port)
    ...  srv.fetches (Host names, in order);  srv.stop(); remove_pki(pki)

port 0 picks a free port; 443 (the real one) only inside a network
namespace of the test's own.  Invariants: the server thread stops in
stop(); nothing outside the temporary folder is written."""
import http.server
import os
import shutil
import ssl
import subprocess
import tempfile
import threading


def _run(args, cwd):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(args), p.stderr))


def make_pki(domains):
    """A temporary folder with a test CA (ca.pem, readable by a server's
    unprivileged worker) and srv.pem/srv.key for every mta-sts.DOMAIN."""
    d = tempfile.mkdtemp(prefix="tern-it-sts-pki-")
    os.chmod(d, 0o755)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
          "-subj", "/CN=Tern test STS CA", "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    _run(["openssl", "req", *ec, "-keyout", "srv.key", "-out", "srv.csr",
          "-subj", "/CN=mta-sts"], d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                % ",".join("DNS:mta-sts.%s" % dom for dom in domains))
    _run(["openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf"], d)
    os.chmod(os.path.join(d, "ca.pem"), 0o644)
    return d


def remove_pki(d):
    shutil.rmtree(d, ignore_errors=True)


class PolicyServer:
    """HTTPS on (host, port) serving policies {domain: text}."""

    def __init__(self, pki, policies, host="127.0.0.1", port=0):
        self.policies = dict(policies)
        self.fetches = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = (self.headers.get("Host") or "").split(":")[0].lower()
                dom = name[len("mta-sts."):] if name.startswith("mta-sts.") else ""
                owner.fetches.append(name)
                if self.path != "/.well-known/mta-sts.txt" or dom not in owner.policies:
                    self.send_error(404)
                    return
                body = owner.policies[dom].encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(pki, "srv.pem"), os.path.join(pki, "srv.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)
