"""Outbound delivery over the real SMTP port (25), in a network namespace
the test creates with `unshare -n`, so port 25 and the whole loopback
range belong to the test: MX fallback, DANE success and DANE mismatch.
The scenario is tests/netns/delivery.py; it prints OK or what failed."""
import os
import subprocess

import tern as tern_harness

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netns",
                      "delivery.py")


def test_port_25_mx_fallback_and_dane():
    assert os.geteuid() == 0, "a network namespace needs root (CI runs as root)"
    p = subprocess.run(["unshare", "-n", "/usr/bin/python3", SCRIPT], capture_output=True,
                       text=True, timeout=180 * tern_harness.SCALE,
                       env=dict(os.environ, TERN_BIN=tern_harness.TERN_BIN))
    print(p.stdout[-4000:], p.stderr[-4000:])
    assert p.returncode == 0 and "OK:" in p.stdout, p.stdout[-4000:] + p.stderr[-4000:]
