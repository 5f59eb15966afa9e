"""The MTA-STS policy cache survives a restart (RFC 8461 5.1): a sending
Tern fetches the enforce policy of sts-keep.test over HTTPS (a small
Python server from tests/harness/mtasts.py); the policy names
only mx.elsewhere.test while the domain's MX is mail.example.test, so
delivery is deferred ("does not match the MTA-STS policy").

Then the HTTPS server stops, the _mta-sts TXT record changes its id (a
second test DNS with the new id replaces the first in the sender's
config) and the sender restarts.  A new message to the domain finds a new
id, tries to refresh the policy, fails, and keeps enforcing the policy
cached in the store: deferred again, nothing delivered, and the log shows
the cached policy loaded and the failed fetch.  Without the store's cache
the restart would forget the policy and deliver in clear to the MX."""
import os

import pytest

import mtasts
import tern as tern_harness
import testdns
from conftest import finish
from outbound import PASSWORD, find, queue_json, submit, wait_for

HOST = tern_harness.HOSTNAME   # mail.example.test, the receiver
DOMAIN = "sts-keep.test"
POLICY = "version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n"


@pytest.fixture(scope="module")
def pki():
    d = mtasts.make_pki([DOMAIN])
    yield d
    mtasts.remove_pki(d)


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
    srv = mtasts.PolicyServer(pki, {DOMAIN: POLICY})
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
                              os.path.join(pki, "ca.pem"), srv.port))
        sender.start()

        rcpt = "user@" + DOMAIN
        submit(sender, [rcpt], "before restart")
        q = wait_for(lambda: [m for m in queue_json(sender)
                              if m["recipients"][0]["state"] == "deferred"])
        assert q, sender.log_tail()
        assert "does not match the MTA-STS policy" in q[0]["recipients"][0]["last_error"]
        assert len(srv.fetches) == 1
        # the policy reached the store
        assert wait_for(lambda: sender.query(
            "SELECT policy_id FROM mta_sts_policies WHERE domain = ?", (DOMAIN,))), \
            sender.log_tail()

        # the policy server goes away, the TXT id changes, Tern restarts
        srv.stop()
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
        assert len(srv.fetches) == 1
    finally:
        if https_up:
            srv.stop()
        if sender is not None:
            finish(sender)
        finish(receiver)
        dns1.cleanup()
        dns2.cleanup()
