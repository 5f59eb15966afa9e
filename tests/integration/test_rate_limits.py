"""Per-destination rate limits (queue.rate_limits) end to end: a sending
Tern delivers to a receiving Tern through MX records in the test DNS; the
domains b.test and c.test both have their MX at mx.prov.test, one
"provider", and the sender allows that provider 2 messages per 4 seconds
(an mx rule, so both domains share the budget).

Five messages (three to b.test, two to c.test) are submitted at once:
- all arrive, paced: no three of them within less than one window (2.5 s
  allowed for timing slack), the last at least two windows after the first;
- waiting is not failing: no recipient was deferred (no attempt counted,
  no error, no DSN in the sender's INBOX);
- the refusal is logged once per window, not once per message."""
import time

import pytest

import tern as tern_harness
import testdns
from conftest import finish
from test_delivery import PASSWORD, queue_json, submit, wait_for

WINDOW = 4


@pytest.fixture(scope="module")
def receiver():
    s = tern_harness.TernServer(name="rl-recv")
    for d in ("b.test", "c.test"):
        s.add_domain(d)
    s.add_user("bob@b.test", PASSWORD)
    s.add_user("carol@c.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def dns():
    d = testdns.TestDNS()
    d.zone("prov.test", ["mx A 127.0.0.1"])
    for dom in ("b.test", "c.test"):
        d.zone(dom, ["@ MX 10 mx.prov.test."])
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def sender(receiver, dns):
    s = tern_harness.TernServer(name="rl-send")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=3, dnssec=False))
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 60;\n  retry_max = 60;\n"
                "  remote_port = %d;\n"
                "  mta_sts = { enabled = false; };\n"
                "  rate_limits = ( { mx = \"*.prov.test\"; messages = 2; seconds = %d; } );\n"
                "};\n" % (receiver.port("smtp"), WINDOW))
    s.start()
    yield s
    finish(s)


def arrived(receiver):
    return len(receiver.message_rows("bob@b.test")) + len(receiver.message_rows("carol@c.test"))


def test_paced_by_shared_budget(sender, receiver):
    rcpts = ["bob@b.test", "bob@b.test", "carol@c.test", "bob@b.test", "carol@c.test"]
    for i, r in enumerate(rcpts):
        submit(sender, [r], "paced %d" % i)
    times = []
    end = time.time() + 30 * tern_harness.SCALE
    while len(times) < len(rcpts) and time.time() < end:
        n = arrived(receiver)
        times += [time.time()] * (n - len(times))
        time.sleep(0.1)
    assert len(times) == len(rcpts), sender.log_tail()
    for i in range(len(times) - 2):
        assert times[i + 2] - times[i] >= WINDOW - 1.5, times
    assert times[-1] - times[0] >= 2 * WINDOW - 1.5, times
    assert wait_for(lambda: queue_json(sender) == [])
    log = sender.log()
    assert "event=deferred" not in log
    assert "event=bounced" not in log and "event=dsn" not in log
    limited = [ln for ln in log.splitlines() if "event=rate_limited" in ln]
    # windows 1 and 2 refused some message; never one line per message
    assert 1 <= len(limited) <= 2, limited
    assert all("rule_mx=*.prov.test" in ln or "rule_mx=\"*.prov.test\"" in ln
               for ln in limited), limited
    assert sender.messages("alice@a.test") == []
