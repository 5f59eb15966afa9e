"""Local submission: `tern sendmail` run by unprivileged local users.

The server listens on its Unix socket (DIR/run/submit.sock by default) and
knows the submitting user from the socket's peer credentials:
- "ternsm" (created here when missing) has no sendmail.users entry and
  submits as ternsm@a.test through sendmail.default_domain;
- "nobody" is mapped by sendmail.users to web@a.test;
- "daemon" maps to daemon@a.test, which is no Tern user: refused.
Covered: recipients as arguments, -t (To/Cc/Bcc, Bcc removed), -f (own
alias allowed, someone else's refused), -F, -i and the "." line,
Received/Date/Message-ID/From added, a remote recipient entering the
queue, -bp / mailq (also through a link named mailq), bad options, a bad
address, a missing socket: each a clear error and a non-zero exit.
The machine's own /usr/sbin/sendmail is never touched."""
import atexit
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import tern as tern_harness
from conftest import finish

PASSWORD = "sm-Secret-1"
USER = "ternsm"

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_NOPERM, EX_TEMPFAIL = 64, 65, 67, 77, 75


def ensure_user(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        name], check=True)
    return pwd.getpwnam(name)


# The binary the local users run: a copy in a folder everyone may enter,
# since the checkout itself may sit under a private home (/root on CI).
USER_BIN = None


def user_bin():
    global USER_BIN
    if USER_BIN is None:
        d = tempfile.mkdtemp(prefix="tern-sendmail-bin-")
        os.chmod(d, 0o755)
        USER_BIN = os.path.join(d, "tern")
        shutil.copy2(tern_harness.TERN_BIN, USER_BIN)
        os.chmod(USER_BIN, 0o755)
        atexit.register(shutil.rmtree, d, True)
    return USER_BIN


@pytest.fixture(scope="module")
def srv():
    if os.geteuid() != 0:
        pytest.skip("needs root to run commands as other local users")
    ensure_user(USER)
    s = tern_harness.TernServer(name="sendmail")
    s.add_domain("a.test")
    for u in ("ternsm@a.test", "web@a.test", "other@a.test"):
        s.add_user(u, PASSWORD)
    s.add_alias("cron@a.test", "ternsm@a.test")
    with open(s.conf, "a") as f:
        f.write("\nsendmail = {\n  default_domain = \"a.test\";\n"
                "  users = ( { uid = \"nobody\"; address = \"web@a.test\"; } );\n};\n"
                "queue = {\n  scan_interval = 1;\n  retry_min = 300;\n"
                "  routes = ( { domain = \"remote.test\"; host = \"127.0.0.1\"; port = 9; } );\n"
                "};\n")
    # local users read the config (no secrets in it) to find the socket
    os.chmod(s.conf, 0o644)
    s.start()
    yield s
    finish(s)


def sendmail(s, args, message, user=USER, env=None):
    if isinstance(message, str):
        message = message.encode()
    cmd = ["runuser", "-u", user, "--", user_bin(), "-c", s.conf, "sendmail"] + args
    return subprocess.run(cmd, input=message, capture_output=True, timeout=60, env=env)


def wait_for(pred, timeout=20):
    return tern_harness.wait_for(pred, timeout, 0.1)


def stored(s, address, marker):
    found = wait_for(lambda: tern_harness.find_stored(s, address, marker))
    assert found, "no message with %r for %s; log:\n%s" % (marker, address, s.log_tail())
    return found[0]


def header(msg, name):
    head = msg.split(b"\r\n\r\n", 1)[0]
    return [ln for ln in head.split(b"\r\n") if ln.lower().startswith(name.lower() + b":")]


def test_recipients_as_arguments(srv):
    p = sendmail(srv, ["-i", "other@a.test"], "Subject: args one\n\nhello from args\n.\nstill body\n")
    assert p.returncode == 0, p.stderr
    m = stored(srv, "other@a.test", b"hello from args")
    assert b"\r\n.\r\nstill body" in m            # -i: the "." line is text
    # added by local submission: trace, Date, Message-ID and From
    recv = header(m, b"Received")
    assert recv and b"from local (uid %d %s)" % (pwd.getpwnam(USER).pw_uid, USER.encode()) in m
    assert header(m, b"Date") and header(m, b"Message-ID")
    assert header(m, b"From") == [b"From: <ternsm@a.test>"]
    assert b"Return-Path: <ternsm@a.test>" in m or b"ternsm@a.test" in m


def test_dot_line_ends_message_without_i(srv):
    p = sendmail(srv, ["other@a.test"], "Subject: dot end\n\nbefore the dot\n.\nafter the dot\n")
    assert p.returncode == 0, p.stderr
    m = stored(srv, "other@a.test", b"before the dot")
    assert b"after the dot" not in m


def test_unqualified_recipient_gets_default_domain(srv):
    p = sendmail(srv, ["-oi", "other"], "Subject: bare\n\nto a bare login\n")
    assert p.returncode == 0, p.stderr
    stored(srv, "other@a.test", b"to a bare login")


def test_t_reads_recipients_and_drops_bcc(srv):
    msg = ("From: Tern Sm <ternsm@a.test>\nTo: Other <other@a.test>\nCc: \nBcc: web@a.test\n"
           "Subject: with -t\n\nextracted recipients\n")
    p = sendmail(srv, ["-t", "-i"], msg)
    assert p.returncode == 0, p.stderr
    for rcpt in ("other@a.test", "web@a.test"):
        m = stored(srv, rcpt, b"extracted recipients")
        assert not header(m, b"Bcc"), m
        assert header(m, b"From") == [b"From: Tern Sm <ternsm@a.test>"]


def test_t_without_recipients_fails(srv):
    p = sendmail(srv, ["-t"], "Subject: nobody\n\nno one to send to\n")
    assert p.returncode == EX_USAGE
    assert b"no recipients" in p.stderr


def test_f_own_alias_and_full_name(srv):
    p = sendmail(srv, ["-i", "-f", "cron@a.test", "-F", "Cron Daemon", "other@a.test"],
                 "Subject: cron output\n\nfrom cron\n")
    assert p.returncode == 0, p.stderr
    m = stored(srv, "other@a.test", b"from cron")
    assert header(m, b"From") == [b"From: \"Cron Daemon\" <ternsm@a.test>"]
    assert b"Return-Path: <cron@a.test>" in m, m[:400]


def test_f_someone_elses_address_refused(srv):
    p = sendmail(srv, ["-f", "web@a.test", "other@a.test"], "Subject: spoof\n\nspoofed\n")
    assert p.returncode == EX_DATAERR, (p.returncode, p.stderr)
    assert b"web@a.test" in p.stderr and b"not owned" in p.stderr
    assert not tern_harness.find_stored(srv, "other@a.test", b"spoofed")


def test_mapped_user_submits_as_configured_address(srv):
    p = sendmail(srv, ["-i", "other@a.test"], "Subject: from www\n\nweb form mail\n", user="nobody")
    assert p.returncode == 0, p.stderr
    m = stored(srv, "other@a.test", b"web form mail")
    assert header(m, b"From") == [b"From: <web@a.test>"]


def test_unmapped_user_refused(srv):
    p = sendmail(srv, ["other@a.test"], "Subject: x\n\nfrom daemon\n", user="daemon")
    assert p.returncode == EX_NOPERM, (p.returncode, p.stderr)
    assert b"daemon@a.test is not a Tern user" in p.stderr
    assert not tern_harness.find_stored(srv, "other@a.test", b"from daemon")


def test_unknown_recipient_sends_nothing(srv):
    p = sendmail(srv, ["-i", "other@a.test", "ghost@a.test"], "Subject: half\n\nhalf known\n")
    assert p.returncode == EX_NOUSER, (p.returncode, p.stderr)
    assert b"ghost@a.test" in p.stderr and b"not sent" in p.stderr
    time.sleep(0.5)
    assert not tern_harness.find_stored(srv, "other@a.test", b"half known")


def queue_list(srv):
    p = srv.tern("queue", "list", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_remote_recipient_queued_and_bp(srv):
    p = sendmail(srv, ["-i", "far@remote.test"], "Subject: far away\n\nto the queue\n")
    assert p.returncode == 0, p.stderr
    q = wait_for(lambda: [m for m in queue_list(srv)
                          if m["recipients"][0]["address"] == "far@remote.test"])
    assert q and q[0]["sender"] == "ternsm@a.test", queue_list(srv)
    # -bp lists the queue like mailq (root may read the store)
    p = subprocess.run([tern_harness.TERN_BIN, "-c", srv.conf, "sendmail", "-bp"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert b"far@remote.test" in p.stdout and q[0]["id"].encode() in p.stdout
    # the same binary run under the name mailq
    link_dir = os.path.join(srv.dir, "bin")
    os.makedirs(link_dir, exist_ok=True)
    link = os.path.join(link_dir, "mailq")
    if not os.path.exists(link):
        os.symlink(tern_harness.TERN_BIN, link)
    env = dict(os.environ, TERN_CONF=srv.conf)
    p = subprocess.run([link], capture_output=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert b"far@remote.test" in p.stdout


def test_invoked_as_sendmail(srv):
    link = os.path.join(srv.dir, "bin", "sendmail")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.chmod(os.path.dirname(link), 0o755)
    if not os.path.exists(link):
        os.symlink(user_bin(), link)
    env = dict(os.environ, TERN_CONF=srv.conf)
    p = subprocess.run(["runuser", "-u", USER, "--", "env", "TERN_CONF=" + srv.conf, link,
                        "-oi", "-oem", "-B8BITMIME", "other@a.test"],
                       input="Subject: via link\n\nlinked binary \u00e9t\u00e9\n".encode(),
                       capture_output=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    m = stored(srv, "other@a.test", b"linked binary")
    assert "été".encode() in m


@pytest.mark.parametrize("args,needle", [
    (["-Z", "other@a.test"], b"unknown option '-Z'"),
    (["-bs"], b"-bs"),
    (["-f"], b"-f needs a value"),
    (["-N", "sometimes", "other@a.test"], b"-N takes"),
    ([], b"no recipients"),
])
def test_bad_options(srv, args, needle):
    p = sendmail(srv, args, "Subject: x\n\nbad options\n")
    assert p.returncode == EX_USAGE, (p.returncode, p.stderr)
    assert needle in p.stderr


def test_bad_address_and_nul(srv):
    p = sendmail(srv, ["not an address@@x"], "Subject: x\n\nbad address\n")
    assert p.returncode == EX_DATAERR, (p.returncode, p.stderr)
    assert b"not a valid address" in p.stderr or b"recipient" in p.stderr
    p = sendmail(srv, ["other@a.test"], b"Subject: x\n\nnul \x00 byte\n")
    assert p.returncode == EX_DATAERR and b"NUL" in p.stderr


def test_missing_socket_is_an_error(srv):
    d = tempfile.mkdtemp(prefix="tern-it-nosock-")
    try:
        os.chmod(d, 0o755)
        conf = os.path.join(d, "tern.conf")
        text = srv.config_text().replace(
            "sendmail = {\n", "sendmail = {\n  socket = \"%s/none.sock\";\n" % d, 1)
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o644)
        cmd = ["runuser", "-u", USER, "--", user_bin(), "-c", conf, "sendmail",
               "other@a.test"]
        p = subprocess.run(cmd, input=b"Subject: x\n\nnowhere\n", capture_output=True,
                           timeout=60)
        assert p.returncode == EX_TEMPFAIL, (p.returncode, p.stderr)
        assert b"cannot connect" in p.stderr and b"not sent" in p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_reload_keeps_the_socket(srv):
    srv.signal(signal.SIGHUP)
    assert wait_for(lambda: "event=reloaded" in srv.log())
    p = sendmail(srv, ["-i", "other@a.test"], "Subject: after reload\n\nstill served\n")
    assert p.returncode == 0, p.stderr
    stored(srv, "other@a.test", b"still served")


def test_socket_is_world_connectable(srv):
    sock = os.path.join(srv.dir, "run", "submit.sock")
    st = os.stat(sock)
    assert st.st_mode & 0o777 == 0o666
    assert shutil.which("sendmail") is None or os.path.realpath(shutil.which("sendmail")) != \
        os.path.realpath(tern_harness.TERN_BIN)
