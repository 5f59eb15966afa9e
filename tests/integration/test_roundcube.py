"""Webmail end to end: Debian's Roundcube (SQLite backend, PHP's built-in
web server on loopback, tests/roundcube/) in front of a fresh Tern, driven
by headless Chromium through Selenium (python3-selenium, chromium-driver).

The flow, as a user would do it: five messages reach a@ over SMTP (three of
them one reply chain from b@ and a remote correspondent, with dates that
sort differently from arrival order); a@ logs in through Roundcube's login
form, opens the list options and chooses "sort by sent date, descending,
threads"; the list must show three thread roots in date order; a@ expands
the thread, opens the latest message in the preview pane (screenshot), and
replies through the compose form; Roundcube sends the reply through Tern's
submission port (STARTTLS + AUTH) to b@.  The test then checks with imaplib
that b@'s INBOX holds the reply (Subject "Re: ...", In-Reply-To and
References pointing at the original), that a@'s Sent holds Roundcube's copy
and the original is \\Answered, and reads Roundcube's IMAP protocol log to
assert it used SORT and THREAD (docs/webmail.md lists what it used).

Every wait is bounded (explicit waits of at most 30 s; no sleeps used as
synchronisation).  Missing packages fail the test with the command that
installs them; the test never skips itself.
"""
import email
import email.policy
import imaplib
import os
import re
import shutil
import smtplib
import sys
import time

import pytest

import tern as tern_harness
from imapc import tls_ctx
from conftest import finish

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "roundcube"))
import roundcube  # noqa: E402

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
    SELENIUM_ERROR = None
except ImportError as e:  # reported by the fixture as a failure, not a skip
    SELENIUM_ERROR = e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
A, A_PW = "a@example.test", "alpha-Web-1"
B, B_PW = "b@example.test", "bravo-Web-2"
WAIT = 30   # seconds, the longest any single UI wait may take
KICKOFF = "Project kickoff"
MARKER = "Reply typed in Roundcube 7f3c"



def msg(frm, subject, mid, date, body, parents=()):
    lines = ["From: %s" % frm, "To: Alice <%s>" % A, "Subject: %s" % subject,
             "Message-ID: <%s>" % mid, "Date: %s" % date]
    if parents:
        lines.append("In-Reply-To: <%s>" % parents[-1])
        lines.append("References: %s" % " ".join("<%s>" % p for p in parents))
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body, ""]
    return "\r\n".join(lines)


# Arrival order (UID order) differs from date order on purpose: sorted by
# sent date, newest first, the thread roots are lunch, kickoff, report;
# by arrival they would be kickoff, report, lunch.
MESSAGES = [
    ("dave@remote.test", msg("Dave <dave@remote.test>", "Lunch on Friday", "lunch@rc.test",
                             "Sat, 6 Jan 2024 12:00:00 +0000", "Pizza or sushi?")),
    ("erin@remote.test", msg("Erin <erin@remote.test>", "Quarterly report", "report@rc.test",
                             "Mon, 1 Jan 2024 08:00:00 +0000", "The numbers are attached.")),
    (B, msg("Bob <%s>" % B, KICKOFF, "kick1@rc.test", "Tue, 2 Jan 2024 09:00:00 +0000",
            "Shall we start on Monday?")),
    ("carol@remote.test", msg("Carol <carol@remote.test>", "Re: " + KICKOFF, "kick2@rc.test",
                              "Wed, 3 Jan 2024 10:00:00 +0000", "Monday works for me.",
                              ("kick1@rc.test",))),
    (B, msg("Bob <%s>" % B, "Re: " + KICKOFF, "kick3@rc.test", "Thu, 4 Jan 2024 11:00:00 +0000",
            "Great, Monday at ten then. Alice, can you book the room?",
            ("kick1@rc.test", "kick2@rc.test"))),
]
ROOTS_BY_DATE_DESC = ["Lunch on Friday", KICKOFF, "Quarterly report"]


def require_packages():
    problems = []
    if SELENIUM_ERROR is not None:
        problems.append("python3-selenium (%s)" % SELENIUM_ERROR)
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            problems.append("%s (%s)" % (pkg, path))
    problems += roundcube.missing_parts()
    if problems:
        pytest.fail("webmail test needs Debian packages that are missing: %s. Run scripts/deps.sh "
                    "(apt-get install --no-install-recommends %s chromium chromium-driver "
                    "python3-selenium)" % ("; ".join(problems), roundcube.PACKAGES))


@pytest.fixture(scope="module")
def srv():
    require_packages()
    s = tern_harness.TernServer(name="webmail")
    s.add_domain("example.test")
    s.add_user(A, A_PW)
    s.add_user(B, B_PW)
    s.start()
    yield s
    finish(s)


@pytest.fixture(scope="module")
def rc(srv):
    # As a webmail on the same host would: IMAP with STARTTLS on 143 and
    # submission with STARTTLS on 587, verifying Tern's self-signed
    # certificate (trusted as a file, checked for Tern's host name).
    r = roundcube.Roundcube("tls://127.0.0.1:%d" % srv.port("imap"),
                            "tls://127.0.0.1:%d" % srv.port("submission"),
                            os.path.join(srv.dir, "tls", "cert.pem"), tern_harness.HOSTNAME)
    try:
        r.start(timeout=20 * tern_harness.SCALE)
    except Exception:
        r.cleanup()
        raise
    yield r
    r.cleanup()


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1366,900", "--lang=en-US", "--no-first-run",
              "--user-data-dir=%s" % (tmp_path / "chromium-profile")):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(WAIT)
    d.set_script_timeout(WAIT)
    yield d
    d.quit()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def deliver(srv):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as c:
        c.ehlo("mx.remote.test")
        for sender, text in MESSAGES:
            refused = c.sendmail(sender, [A], text.encode())
            assert not refused, refused


def imap_login(srv, user, pw):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=tls_ctx(), timeout=30)
    c.login(user, pw)
    return c


def uid_of(c, message_id):
    typ, data = c.uid("SEARCH", None, "HEADER", "Message-ID", message_id)
    assert typ == "OK", data
    uids = data[0].split()
    assert len(uids) == 1, (message_id, data)
    return int(uids[0])


def fetch_all(c, mailbox):
    """[(uid, flags, email.message.Message)] of a mailbox."""
    typ, _ = c.select(mailbox, readonly=True)
    assert typ == "OK"
    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        head = item[0].decode()
        uid = int(re.search(r"UID (\d+)", head).group(1))
        flags = re.search(r"FLAGS \(([^)]*)\)", head).group(1).split()
        out.append((uid, flags, email.message_from_bytes(item[1], policy=email.policy.default)))
    return out


def wait_for(d, what, cond, timeout=WAIT, detail=None):
    """WebDriverWait with a message naming what was awaited (and, if given,
    detail(d): what the page showed instead)."""
    try:
        return WebDriverWait(d, timeout).until(cond)
    except TimeoutException:
        seen = ""
        if detail is not None:
            try:
                seen = "; page shows %r" % (detail(d),)
            except WebDriverException as e:
                seen = "; (%s)" % e.msg
        raise AssertionError("timed out after %ds waiting for %s (url %s)%s"
                             % (timeout, what, d.current_url, seen)) from None


def visible_subjects(d):
    """Subjects of the message list rows that are displayed, top to bottom."""
    return d.execute_script("""
        var out = [];
        document.querySelectorAll('#messagelist tbody tr').forEach(function (tr) {
            if (tr.offsetParent === null) return;
            var s = tr.querySelector('span.subject');
            out.push((s ? s.textContent : tr.textContent).trim());
        });
        return out;""")


def click_visible(d, css):
    """Click the one displayed element matching css (toolbars repeat their
    buttons in hidden menus for small screens)."""
    shown = [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
    assert len(shown) == 1, "%d visible elements match %r" % (len(shown), css)
    shown[0].click()


def list_idle(d):
    return d.execute_script("return !!(window.rcmail && rcmail.message_list && !rcmail.busy"
                            " && !rcmail.env.list_loading)")


def imap_commands(log):
    """Command names Roundcube sent ("UID SORT", "APPEND", ...), from its
    IMAP debug log lines "C: A0001 COMMAND ..."."""
    return [((m.group(1) or "") + m.group(2))
            for m in re.finditer(r"\] C: A\d+ (UID )?([A-Z]+)", log)]


def test_roundcube_reply_flow(srv, rc, browser, tmp_path):
    d = browser
    deliver(srv)
    c = imap_login(srv, A, A_PW)
    c.select("INBOX", readonly=True)
    kick1_uid = uid_of(c, "kick1@rc.test")
    kick3_uid = uid_of(c, "kick3@rc.test")
    c.logout()
    shots = {}
    try:
        # ---- log in through the login form
        d.get(rc.url)
        wait_for(d, "login form", EC.element_to_be_clickable((By.ID, "rcmloginuser"))).send_keys(A)
        d.find_element(By.ID, "rcmloginpwd").send_keys(A_PW)
        submit = d.find_element(By.ID, "rcmloginsubmit")
        submit.click()
        wait_for(d, "login form sent", EC.staleness_of(submit))
        task = wait_for(d, "page after login", lambda d: d.execute_script(
            "return window.rcmail && rcmail.loaded ? rcmail.env.task : null"))
        assert task == "mail", "login refused (back on the %s page); Roundcube errors.log:\n%s" % (
            task, rc.read_log("errors")[-2000:])
        wait_for(d, "message list after login",
                 lambda d: list_idle(d) and len(visible_subjects(d)) == len(MESSAGES),
                 detail=visible_subjects)
        assert d.execute_script("return rcmail.env.threads") is True, \
            "Roundcube did not see THREAD=REFERENCES in Tern's CAPABILITY"

        # ---- list options: sort by sent date, newest first, threads
        d.find_element(By.ID, "listmenulink").click()
        sortcol = wait_for(d, "list options dialog", EC.visibility_of_element_located(
            (By.CSS_SELECTOR, ".ui-dialog select[name=sort_col]")))
        Select(sortcol).select_by_value("date")
        Select(d.find_element(By.CSS_SELECTOR, ".ui-dialog select[name=sort_ord]")) \
            .select_by_value("DESC")
        Select(d.find_element(By.CSS_SELECTOR, ".ui-dialog select[name=mode]")) \
            .select_by_value("threads")
        d.find_element(By.CSS_SELECTOR, ".ui-dialog-buttonpane button.mainaction").click()
        wait_for(d, "threaded list sorted by date: %s" % ROOTS_BY_DATE_DESC,
                 lambda d: list_idle(d) and d.execute_script("return rcmail.env.threading")
                 and visible_subjects(d) == ROOTS_BY_DATE_DESC, detail=visible_subjects)
        assert d.execute_script("return rcmail.env.sort_col") == "date"
        assert d.execute_script("return rcmail.env.sort_order") == "DESC"

        # ---- expand the kickoff thread and open its latest message
        # rows are rcmail.message_list.rows[uid]; the thread's expander is
        # "rcmexpando" + the root row's element id
        root = d.execute_script("var r = rcmail.message_list.rows[arguments[0]];"
                                " return r && !r.parent_uid && r.has_children ? r.id : null;",
                                str(kick1_uid))
        assert root, "message %d is not a thread root with children" % kick1_uid
        d.find_element(By.ID, "rcmexpando" + root).click()
        wait_for(d, "expanded thread", lambda d: len(visible_subjects(d)) == len(MESSAGES),
                 detail=visible_subjects)
        subjects = visible_subjects(d)
        # the thread's children follow their root, indented under it
        i = subjects.index(KICKOFF)
        assert subjects[i + 1:i + 3] == ["Re: " + KICKOFF] * 2, subjects
        assert d.execute_script("return rcmail.message_list.rows[arguments[0]].depth",
                                str(kick3_uid)) == 2
        row = d.execute_script("return rcmail.message_list.rows[arguments[0]].obj", str(kick3_uid))
        assert row.is_displayed()
        row.find_element(By.CSS_SELECTOR, "span.subject").click()
        frame = wait_for(d, "preview frame", EC.presence_of_element_located((By.ID, "messagecontframe")))
        wait_for(d, "message in the preview pane",
                 lambda d: "book the room" in d.execute_script(
                     "var f = document.getElementById('messagecontframe');"
                     "return f && f.contentDocument && f.contentDocument.body ?"
                     " f.contentDocument.body.textContent : ''"))
        d.switch_to.frame(frame)
        try:
            header = d.find_element(By.CSS_SELECTOR, "h2.subject").text
            assert "Re: " + KICKOFF in header, header
        finally:
            d.switch_to.default_content()
        shots["message"] = str(tmp_path / "roundcube-message.png")
        assert d.save_screenshot(shots["message"])

        # ---- reply through the compose form
        wait_for(d, "reply button enabled", lambda d: d.execute_script(
            "return rcmail.commands['reply'] === true"))
        click_visible(d, "a.reply")
        subj = wait_for(d, "compose form", EC.visibility_of_element_located((By.ID, "compose-subject")))
        wait_for(d, "compose ready", lambda d: d.execute_script(
            "return window.rcmail && rcmail.env.action == 'compose' && !rcmail.busy"))
        assert subj.get_attribute("value") == "Re: " + KICKOFF
        to = d.execute_script("return document.getElementById('_to').value")
        assert B in to, to
        body = d.find_element(By.ID, "composebody")
        body.send_keys(MARKER + "\n")
        shots["compose"] = str(tmp_path / "roundcube-compose.png")
        d.save_screenshot(shots["compose"])
        click_visible(d, "button.send")
        wait_for(d, "back to the list after sending", lambda d: d.execute_script(
            "return window.rcmail && rcmail.env.action != 'compose' && !!rcmail.message_list"))
    except (AssertionError, WebDriverException):
        fail_shot = str(tmp_path / "roundcube-failure.png")
        try:
            d.save_screenshot(fail_shot)
        except WebDriverException:
            pass
        print("screenshot of the failure: %s\nRoundcube errors.log:\n%s\nPHP:\n%s"
              % (fail_shot, rc.read_log("errors")[-3000:], rc.php_output()[-2000:]))
        raise

    # ---- the reply is in b@'s INBOX, threaded onto the original
    deadline = time.monotonic() + WAIT
    replies = []
    while time.monotonic() < deadline and not replies:
        cb = imap_login(srv, B, B_PW)
        replies = [m for _u, _f, m in fetch_all(cb, "INBOX") if MARKER in m.get_body().get_content()]
        cb.logout()
        if not replies:
            time.sleep(0.2)   # polling a mailbox another process fills, bounded
    assert len(replies) == 1, "reply not delivered to %s; Roundcube smtp.log:\n%s" % (
        B, rc.read_log("smtp")[-3000:])
    r = replies[0]
    assert r["Subject"] == "Re: " + KICKOFF
    assert r["In-Reply-To"] == "<kick3@rc.test>"
    assert r["References"].split() == ["<kick1@rc.test>", "<kick2@rc.test>", "<kick3@rc.test>"]
    assert A in r["From"]
    assert r["X-Sender"] == A
    # it came in through submission: authenticated, over TLS
    assert "with ESMTPSA" in r["Received"], r["Received"]
    assert re.search(r"mod=auth event=auth_ok proto=smtp .*user=%s" % re.escape(A), srv.log()), \
        "no submission AUTH by %s in Tern's log" % A

    # a@'s Sent holds Roundcube's copy (APPEND), and the original is \Answered
    ca = imap_login(srv, A, A_PW)
    sent = [m for _u, _f, m in fetch_all(ca, "Sent") if MARKER in m.get_body().get_content()]
    assert len(sent) == 1, "no copy of the reply in Sent"
    flags = {u: f for u, f, _m in fetch_all(ca, "INBOX")}
    assert "\\Answered" in flags[kick3_uid], flags
    ca.logout()

    # ---- the screenshot shows the opened message
    assert os.path.getsize(shots["message"]) > 10 * 1024, shots
    keep = os.environ.get("TERN_ARTIFACTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        for p in shots.values():
            shutil.copy(p, keep)

    # ---- what Roundcube did over IMAP and SMTP (docs/webmail.md)
    imap_log = rc.read_log("imap")
    cmds = set(imap_commands(imap_log))
    assert "STARTTLS" in cmds and "AUTHENTICATE" in cmds, sorted(cmds)
    assert any(c.endswith("THREAD") for c in cmds), sorted(cmds)
    assert any(c.endswith("SORT") for c in cmds), sorted(cmds)
    assert re.search(r"C: \S+ (UID )?THREAD REFERENCES", imap_log), "no THREAD REFERENCES"
    assert re.search(r"C: \S+ (UID )?SORT \((REVERSE )?DATE\)", imap_log), "no SORT (DATE)"
    assert "APPEND" in cmds
    assert not re.search(r"S: \S+ (NO|BAD) ", imap_log), \
        "Tern answered NO/BAD to Roundcube:\n" + "\n".join(
            l for l in imap_log.splitlines() if re.search(r"S: \S+ (NO|BAD) ", l))
    smtp_log = rc.read_log("smtp")
    assert "STARTTLS" in smtp_log and "AUTH " in smtp_log, smtp_log[-2000:]
    assert rc.read_log("errors").strip() == "", rc.read_log("errors")[-3000:]
    print("Roundcube IMAP commands: %s" % " ".join(sorted(cmds)))
