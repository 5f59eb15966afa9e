"""Outbound delivery on the real SMTP port, inside a network namespace of
its own (run by tests/integration/test_delivery_netns.py as
`unshare -n /usr/bin/python3 tests/netns/delivery.py`; nothing here
touches the machine's network).

In the namespace: loopback up; a receiving Tern on the standard ports of
127.0.0.1 (25 included); the test DNS (nsd) with
  mx.test      MX 10 dead (127.0.0.2, nothing listens), MX 20 live (127.0.0.1)
  dane.test    signed; MX mx, mx A 127.0.0.1, _25._tcp.mx TLSA 3 1 1 = the
               receiver's key
  badtlsa.test signed; the same with a TLSA hash that matches nothing
and a sending Tern resolving through it with DNSSEC on.  Checks: the
lowest MX refuses and the next takes the mail, over port 25; DANE matches
and the mail goes; a DANE mismatch defers and nothing is sent in clear.
Prints OK and exits 0, or names what failed and exits 1."""
import hashlib
import json
import os
import smtplib
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))

import tern as tern_harness  # noqa: E402
import testdns  # noqa: E402
from imapc import tls_ctx  # noqa: E402

PASSWORD = "ns-Secret-1"


def spki_sha256(cert_path):
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


wait_for = tern_harness.wait_for


def main():
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    servers = []
    dns = None
    try:
        recv = tern_harness.TernServer(name="mx25", offset=0)
        servers.append(recv)
        for d in ("mx.test", "dane.test", "badtlsa.test"):
            recv.add_domain(d)
        for u in ("max@mx.test", "dan@dane.test", "bad@badtlsa.test"):
            recv.add_user(u, PASSWORD)
        recv.start()
        assert recv.port("smtp") == 25
        key = spki_sha256(os.path.join(recv.dir, "tls", "cert.pem"))
        dns = testdns.TestDNS()
        dns.zone("mx.test", ["@ MX 10 dead", "@ MX 20 live", "dead A 127.0.0.2",
                             "live A 127.0.0.1"])
        dns.zone("dane.test", ["@ MX 10 mx", "mx A 127.0.0.1",
                               "_25._tcp.mx TLSA 3 1 1 %s" % key], dnssec=True)
        dns.zone("badtlsa.test", ["@ MX 10 mx", "mx A 127.0.0.1",
                                  "_25._tcp.mx TLSA 3 1 1 %s" % ("00" * 32)], dnssec=True)
        dns.start()
        send = tern_harness.TernServer(name="out25")
        servers.append(send)
        send.add_domain("a.test")
        send.add_user("alice@a.test", PASSWORD)
        with open(send.conf, "a") as f:
            f.write("\n" + dns.tern_config(timeout=3, dnssec=True))
            f.write("queue = {\n  scan_interval = 1;\n  retry_min = 600;\n};\n")
        send.start()

        rcpts = ["max@mx.test", "dan@dane.test", "bad@badtlsa.test"]
        with smtplib.SMTP_SSL("127.0.0.1", send.port("submissions"), context=tls_ctx(),
                              timeout=30) as c:
            c.login("alice@a.test", PASSWORD)
            c.sendmail("alice@a.test", rcpts,
                       b"From: alice@a.test\r\nSubject: port 25\r\n\r\nover the real port\r\n")

        def at(addr):
            return tern_harness.find_stored(recv, addr, b"over the real port")

        assert wait_for(lambda: at("max@mx.test")), "mx.test: not delivered\n" + send.log_tail()
        assert wait_for(lambda: at("dan@dane.test")), "dane.test: not delivered\n" + \
            send.log_tail()
        log = send.log()
        assert "host=dead.mx.test" in log or 'host="dead.mx.test"' in log, \
            "the lowest MX was not tried first\n" + log
        assert "port=25 tls=dane" in log, "DANE was not used\n" + log

        def deferred():
            p = send.tern("queue", "list", "--json")
            q = json.loads(p.stdout or "[]")
            return [r for m in q for r in m["recipients"]
                    if r["address"] == "bad@badtlsa.test" and r["state"] == "deferred"]

        d = wait_for(deferred)
        assert d, "badtlsa.test: not deferred\n" + send.log_tail()
        assert not at("bad@badtlsa.test"), "a DANE mismatch was delivered"
        # and nothing reached the receiver for it, in clear or otherwise
        assert "bad@badtlsa.test" not in recv.log(), recv.log_tail()
        print("OK: MX fallback on port 25, DANE match delivered, DANE mismatch deferred (%s)"
              % d[0]["last_error"])
        return 0
    except Exception:
        for s in servers:
            print("---- log of", s.dir)
            print(s.log_tail(30))
        raise
    finally:
        reports = []
        for s in servers:
            try:
                s.stop()
                reports += s.sanitizer_reports()
            finally:
                s.cleanup()
        if dns is not None:
            dns.cleanup()
        if reports:
            print("FAILED: sanitizer report in a server log:\n" + "\n".join(reports[:20]))
            sys.exit(1)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
