"""DMARC aggregate reports end to end (docs/dmarc.md, "Aggregate
reports"): two Terns and the test DNS.

- The owner Tern hosts a.test and its report mailbox rua@a.test; a.test
  publishes "v=DMARC1; p=none; rua=mailto:rua@a.test" and an SPF record for
  127.0.0.1.  ext.test sends its reports there too and a.test authorises it
  (ext.test._report._dmarc.a.test, RFC 7489 7.1); noauth.test does the same
  without that record, so its report must not be sent.
- The reporting Tern (SPF, DKIM and DMARC on) receives mail from 127.0.0.1
  with smtplib: From a.test with an aligned SPF pass, From a.test with a
  MAIL FROM elsewhere (DMARC fail, p=none: delivered), From ext.test and
  From noauth.test.  `tern dmarc send --now` there mails the gzip'd XML
  reports through its queue to the owner Tern (a route to its port 25).
- On the owner Tern the report arrives in rua@a.test's INBOX; python's
  xml.etree reads it; `tern dmarc import -` keeps it (a second import is
  recognised), `tern dmarc import --mailbox rua@a.test` picks up the other
  one, and `tern dmarc summary a.test --json` shows 127.0.0.1 with 2
  messages, 1 SPF pass, 0 DKIM pass, 1 aligned pass.
- A second `tern dmarc send --now` finds nothing left to report."""
import email
import gzip
import json
import smtplib
import xml.etree.ElementTree as ET

import pytest

import tern as tern_harness
import testdns
from conftest import finish

PASSWORD = "dmarcrep-Secret-1"
SPF = '@ TXT "v=spf1 ip4:127.0.0.1 -all"'
RUA = '_dmarc TXT "v=DMARC1; p=none; rua=mailto:rua@a.test"'


@pytest.fixture(scope="module")
def dns():
    d = testdns.TestDNS()
    d.zone("a.test", [SPF, RUA, 'ext.test._report._dmarc TXT "v=DMARC1"'])
    d.zone("ext.test", [SPF, RUA])
    d.zone("noauth.test", [SPF, RUA])
    d.zone("elsewhere.test", ['@ TXT "v=spf1 -all"'])
    with d:
        d.start()
        yield d


@pytest.fixture(scope="module")
def owner():
    s = tern_harness.TernServer(name="dmarcrep-owner")
    s.add_domain("a.test")
    s.add_user("rua@a.test", PASSWORD)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def reporter(dns, owner):
    s = tern_harness.TernServer(name="dmarcrep-rep", spf=True, dkim=True, dmarc=True)
    s.add_domain("local.test")
    s.add_user("bob@local.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\n" + dns.tern_config(timeout=2, dnssec=False) + "\n")
        f.write("queue = {\n  scan_interval = 1;\n  retry_min = 2;\n  retry_max = 4;\n"
                "  routes = ( { domain = \"a.test\"; host = \"127.0.0.1\"; port = %d; } );\n"
                "};\n" % owner.port("smtp"))
        f.write("dmarc_reports = {\n  organization = \"Tern Test Receiver\";\n"
                "  contact = \"dmarc-admin@local.test\";\n"
                "  sender = \"noreply-dmarc@local.test\";\n};\n")
    s.start()
    yield s
    finish(s)


def send(srv, mail_from, from_domain, subject):
    data = ("From: <someone@%s>\r\nTo: bob@local.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@dmarcrep.test>\r\n\r\nhello\r\n"
            % (from_domain, subject, subject.replace(" ", "."))).encode()
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), local_hostname="client.a.test",
                      timeout=60) as c:
        c.sendmail(mail_from, ["bob@local.test"], data)


def test_reports_sent_received_and_summarised(reporter, owner):
    send(reporter, "bounce@a.test", "a.test", "aligned")
    send(reporter, "x@elsewhere.test", "a.test", "forged")
    send(reporter, "bounce@ext.test", "ext.test", "external")
    send(reporter, "bounce@noauth.test", "noauth.test", "unauthorised")
    assert tern_harness.wait_for(lambda: len(reporter.messages("bob@local.test")) == 4)
    # the evaluations are recorded through the commit thread
    assert tern_harness.wait_for(
        lambda: reporter.query("SELECT count(*) FROM dmarc_results")[0][0] == 4), \
        [l for l in reporter.log().splitlines() if "dmarc" in l]

    p = reporter.tern("dmarc", "send", "--now")
    assert p.returncode == 0, p.stderr
    assert "3 domains, 2 reports sent, 1 without a usable rua, 0 failed" in p.stdout, p.stdout

    got = tern_harness.wait_for(lambda: len(owner.messages("rua@a.test")) >= 2 and
                                owner.messages("rua@a.test"))
    assert got and len(got) == 2, reporter.log_tail()
    reports = {}
    for raw in got:
        m = email.message_from_bytes(raw)
        assert m["Subject"].startswith("Report Domain: ")
        assert "Submitter: " in m["Subject"] and "Report-ID: <" in m["Subject"]
        parts = [q for q in m.walk() if q.get_content_type() == "application/gzip"]
        assert len(parts) == 1 and parts[0].get_filename().endswith(".xml.gz")
        root = ET.fromstring(gzip.decompress(parts[0].get_payload(decode=True)))
        dom = root.find("policy_published/domain").text
        reports[dom] = (raw, root)
    assert set(reports) == {"a.test", "ext.test"}
    root = reports["a.test"][1]
    assert root.find("report_metadata/org_name").text == "Tern Test Receiver"
    assert root.find("report_metadata/email").text == "dmarc-admin@local.test"
    assert root.find("policy_published/p").text == "none"
    recs = root.findall("record")
    assert sum(int(r.find("row/count").text) for r in recs) == 2
    assert {r.find("row/source_ip").text for r in recs} == {"127.0.0.1"}
    assert sorted(r.find("row/policy_evaluated/spf").text for r in recs) == ["fail", "pass"]
    assert sorted(r.find("auth_results/spf/result").text for r in recs) == ["fail", "pass"]

    # the owner imports the mail as it arrived and summarises it
    p = owner.tern("dmarc", "import", "-", input=reports["a.test"][0].decode("latin-1"))
    assert p.returncode == 0, p.stderr
    assert "for a.test, 2 records" in p.stdout, p.stdout
    p = owner.tern("dmarc", "import", "-", input=reports["a.test"][0].decode("latin-1"))
    assert p.returncode == 0 and "already imported" in p.stdout, p.stdout + p.stderr
    # the whole report mailbox: the ext.test report is new, a.test's known
    p = owner.tern("dmarc", "import", "--mailbox", "rua@a.test")
    assert p.returncode == 0, p.stderr
    assert "1 report imported, 1 already imported, 0 other messages" in p.stdout, p.stdout
    assert "for ext.test, 1 record" in p.stdout, p.stdout
    p = owner.tern("dmarc", "summary", "ext.test", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)[0]["aligned_pass"] == 1, p.stdout
    p = owner.tern("dmarc", "summary", "a.test", "--days", "2", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert len(rows) == 1, rows
    r = rows[0]
    assert r["source_ip"] == "127.0.0.1" and r["reporters"] == "Tern Test Receiver"
    assert (r["messages"], r["spf_pass"], r["spf_fail"]) == (2, 1, 1), r
    assert (r["dkim_pass"], r["dkim_fail"], r["aligned_pass"], r["aligned_fail"]) == \
        (0, 2, 1, 1), r
    p = owner.tern("dmarc", "summary", "a.test")
    assert p.returncode == 0 and "127.0.0.1" in p.stdout, p.stdout
    p = owner.tern("dmarc", "summary", "nothing.test")
    assert p.returncode == 0 and "no DMARC reports" in p.stdout

    # everything was marked reported
    p = reporter.tern("dmarc", "send", "--now")
    assert p.returncode == 0 and "0 domains" in p.stdout, p.stdout + p.stderr


def test_import_refuses_junk(owner):
    p = owner.tern("dmarc", "import", "-", input="Subject: hi\r\n\r\nno report\r\n")
    assert p.returncode != 0 and "no report attached" in p.stderr, p.stderr
    p = owner.tern("dmarc", "import", "-", input="<feedback><report_metadata>")
    assert p.returncode != 0 and "XML" in p.stderr, p.stderr
