"""The server imports the DMARC aggregate reports others send us by itself
(docs/dmarc.md, "The reports others send you"; queue/dmarcrep-import.c).

One Tern hosts a.test, with the default report mailbox
dmarc-reports@a.test (a user), b.test whose reports go to rua@b.test
(listed in dmarc_reports.import_addresses), and other@a.test, an ordinary
user.  dmarc_reports.import_interval = 1 makes the scan look every second.
Mails are delivered with smtplib on port 25; the reports are built here
(gzip'd XML, and a zip), and `tern dmarc summary DOMAIN --json` shows what
was kept; a restart goes on where the last server stopped."""
import gzip
import io
import json
import re
import smtplib
import time
import zipfile
from email.message import EmailMessage

import pytest

import tern as tern_harness
from conftest import finish

PASSWORD = "dmarcimp-Secret-1"


@pytest.fixture(scope="module")
def srv():
    s = tern_harness.TernServer(name="dmarcimp")
    s.add_domain("a.test")
    s.add_domain("b.test")
    s.add_user("dmarc-reports@a.test", PASSWORD)
    s.add_user("other@a.test", PASSWORD)
    s.add_user("rua@b.test", PASSWORD)
    s.set("dmarc_reports.import_interval", 1)
    s.set("dmarc_reports.import_addresses", ["rua@b.test"])
    s.start()
    yield s
    finish(s)


def report_xml(report_id, domain, rows, age=0):
    now = int(time.time()) - age
    recs = "".join(
        "<record><row><source_ip>%s</source_ip><count>%d</count>"
        "<policy_evaluated><disposition>none</disposition><dkim>fail</dkim>"
        "<spf>pass</spf></policy_evaluated></row>"
        "<identifiers><header_from>%s</header_from></identifiers>"
        "<auth_results><spf><domain>%s</domain><result>pass</result></spf>"
        "</auth_results></record>" % (ip, n, domain, domain)
        for ip, n in rows)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<feedback>'
            "<report_metadata><org_name>Reporter Org</org_name>"
            "<email>noreply@reporter.test</email><report_id>%s</report_id>"
            "<date_range><begin>%d</begin><end>%d</end></date_range></report_metadata>"
            "<policy_published><domain>%s</domain><p>none</p></policy_published>%s"
            "</feedback>" % (report_id, now - 86400, now, domain, recs)).encode()


def report_mail(to, report_id, domain, rows, kind="gzip", age=0):
    m = EmailMessage()
    m["From"] = "noreply@reporter.test"
    m["To"] = to
    m["Subject"] = "Report Domain: %s Submitter: reporter.test Report-ID: <%s>" % (
        domain, report_id)
    m.set_content("This is an aggregate report.\n")
    xml = report_xml(report_id, domain, rows, age)
    name = "reporter.test!%s!1!2" % domain
    if kind == "gzip":
        m.add_attachment(gzip.compress(xml), maintype="application", subtype="gzip",
                         filename=name + ".xml.gz")
    else:
        z = io.BytesIO()
        with zipfile.ZipFile(z, "w") as f:
            f.writestr(name + ".xml", xml)
        m.add_attachment(z.getvalue(), maintype="application", subtype="zip",
                         filename=name + ".zip")
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def deliver(srv, to, data):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=10) as c:
        c.sendmail("noreply@reporter.test", [to], data)


def summary(srv, domain, days=7):
    p = srv.tern("dmarc", "summary", domain, "--json", "--days", str(days))
    assert p.returncode == 0, p.stderr
    return {r["source_ip"]: r for r in json.loads(p.stdout)}


def wait_summary(srv, domain, pred):
    got = tern_harness.wait_for(lambda: pred(summary(srv, domain)), timeout=20)
    assert got, (summary(srv, domain), srv.log_tail())


def test_report_imported_after_delivery(srv):
    deliver(srv, "dmarc-reports@a.test",
            report_mail("dmarc-reports@a.test", "imp-1", "a.test", [("192.0.2.1", 3)]))
    wait_summary(srv, "a.test", lambda s: "192.0.2.1" in s)
    r = summary(srv, "a.test")["192.0.2.1"]
    assert (r["messages"], r["spf_pass"], r["dkim_pass"], r["aligned_pass"]) == (3, 3, 0, 3), r
    assert r["reporters"] == "Reporter Org"
    log = srv.log()
    assert "event=report_imported" in log and "report_id=imp-1" in log, srv.log_tail()
    # the report stays in the mailbox
    assert len(srv.messages("dmarc-reports@a.test")) == 1


def test_other_mail_left_alone_and_duplicates_count_once(srv):
    deliver(srv, "dmarc-reports@a.test",
            b"From: someone@reporter.test\r\nTo: dmarc-reports@a.test\r\n"
            b"Subject: not a report\r\n\r\nhello\r\n")
    # the same report again, then a new one: once the new one is there,
    # the pass has been over the two before it
    deliver(srv, "dmarc-reports@a.test",
            report_mail("dmarc-reports@a.test", "imp-1", "a.test", [("192.0.2.1", 3)]))
    # older than dmarc_reports.keep_days (14): the pruning would delete it
    deliver(srv, "dmarc-reports@a.test",
            report_mail("dmarc-reports@a.test", "imp-old", "a.test", [("192.0.2.7", 9)],
                        age=30 * 86400))
    deliver(srv, "dmarc-reports@a.test",
            report_mail("dmarc-reports@a.test", "imp-2", "a.test", [("192.0.2.2", 5)],
                        kind="zip"))
    wait_summary(srv, "a.test", lambda s: "192.0.2.2" in s)
    s = summary(srv, "a.test", days=3650)
    assert s["192.0.2.1"]["messages"] == 3, s
    assert s["192.0.2.2"]["messages"] == 5, s
    assert "192.0.2.7" not in s, s
    assert "report_id=imp-old" not in srv.log()
    assert len(srv.messages("dmarc-reports@a.test")) == 5
    assert "event=report_import_skipped" in srv.log(), srv.log_tail()
    assert "event=report_import_failed" not in srv.log(), srv.log_tail()
    # a user can still read the mailbox: the server is fine
    p = srv.tern("dmarc", "summary", "a.test")
    assert p.returncode == 0 and "192.0.2.2" in p.stdout


def test_configured_mailbox_imported_other_not(srv):
    # other@a.test is no report mailbox: its report is left alone
    deliver(srv, "other@a.test",
            report_mail("other@a.test", "imp-3", "c.test", [("192.0.2.3", 7)]))
    deliver(srv, "rua@b.test", report_mail("rua@b.test", "imp-4", "b.test",
                                           [("192.0.2.4", 2)]))
    wait_summary(srv, "b.test", lambda s: "192.0.2.4" in s)
    # one more pass after that one, to be sure
    deliver(srv, "dmarc-reports@a.test",
            report_mail("dmarc-reports@a.test", "imp-5", "d.test", [("192.0.2.5", 1)]))
    wait_summary(srv, "d.test", lambda s: "192.0.2.5" in s)
    assert summary(srv, "c.test") == {}
    assert len(srv.messages("other@a.test")) == 1


def test_restart_goes_on_where_it_stopped(srv):
    # the tests before left a message without a report in
    # dmarc-reports@a.test, already looked at and logged as skipped
    assert "event=report_import_skipped" in srv.log(), srv.log_tail()
    # where each report mailbox stopped is in the store (meta table)
    rows = dict(srv.query("SELECT key, value FROM meta WHERE key LIKE 'dmarc_import:%'"))
    assert len(rows) == 2, rows
    for v in rows.values():
        uidv, _, nxt = str(v).partition(":")
        assert int(uidv) > 0 and int(nxt) > 1, rows
    start = len(srv.log())
    srv.restart()
    deliver(srv, "dmarc-reports@a.test",
            report_mail("dmarc-reports@a.test", "imp-6", "e.test", [("192.0.2.6", 2)]))
    wait_summary(srv, "e.test", lambda s: "192.0.2.6" in s)
    after = srv.log()[start:]
    assert "report_id=imp-6" in after, srv.log_tail()
    # the new server went on where the last one stopped: the old messages
    # were not read again, so none is logged again
    assert "event=report_import_skipped" not in after, after
    assert re.search(r"event=report_import_pass [^\n]*imported=1 known=0 other=0", after), after


def test_config_errors_name_the_line(srv):
    s = tern_harness.TernServer(name="dmarcimp-conf")
    try:
        s.set("dmarc_reports.import_addresses", ["not an address"])
        p = s.tern("config", "check")
        assert p.returncode != 0
        assert "tern.conf:" in p.stderr and "dmarc_reports.import_addresses" in p.stderr, p.stderr
        s.set("dmarc_reports.import_addresses", [])
        s.set("dmarc_reports.import_interval", 0)
        p = s.tern("config", "check")
        assert p.returncode != 0 and "import_interval" in p.stderr, p.stderr
    finally:
        s.cleanup()


def test_import_off():
    s = tern_harness.TernServer(name="dmarcimp-off")
    s.add_domain("a.test")
    s.add_user("dmarc-reports@a.test", PASSWORD)
    s.set("dmarc_reports.import_interval", 1)
    s.set("dmarc_reports.import", False)
    s.start()
    try:
        deliver(s, "dmarc-reports@a.test",
                report_mail("dmarc-reports@a.test", "off-1", "a.test", [("192.0.2.9", 1)]))
        assert tern_harness.wait_for(lambda: len(s.messages("dmarc-reports@a.test")) == 1)
        time.sleep(2.5)
        assert summary(s, "a.test") == {}
        # the administrator can still import by hand
        p = s.tern("dmarc", "import", "--mailbox", "dmarc-reports@a.test")
        assert p.returncode == 0 and "1 report imported" in p.stdout, p.stdout + p.stderr
        assert summary(s, "a.test")["192.0.2.9"]["messages"] == 1
    finally:
        finish(s)
