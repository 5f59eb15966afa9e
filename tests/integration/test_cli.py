"""The `tern` command line: init, config check, domain/user/alias
management, Dovecot import, store verify, and a running server seeing
directory changes without a restart."""
import base64
import hashlib
import os
import re
import subprocess

import pytest

from smtpc import SmtpConn, send_message
import tern as th


@pytest.fixture
def inst(tern_factory):
    """A fresh instance, not started, with no domains."""
    return tern_factory(populate_users=False, start=False, name="cli")


def ok(p):
    assert p.returncode == 0, "exit %d: %s%s" % (p.returncode, p.stdout, p.stderr)
    return p


def fails(p):
    assert p.returncode != 0, "expected failure: %s%s" % (p.stdout, p.stderr)
    assert (p.stdout + p.stderr).strip(), "failure without a message"
    return p


# ---- init and config check ----------------------------------------------------

def test_init_layout(inst):
    assert os.path.isfile(inst.conf)
    assert os.path.isdir(inst.data)
    for f in ("cert.pem", "key.pem"):
        assert os.path.isfile(os.path.join(inst.dir, "tls", f))
    text = inst.config_text()
    assert 'hostname = "mail.example.test";' in text
    assert re.search(r"\bsmtp\s*=\s*%d;" % (25 + inst.offset), text)
    assert re.search(r"\bsubmission\s*=\s*%d;" % (587 + inst.offset), text)
    assert re.search(r"\bsubmissions\s*=\s*%d;" % (465 + inst.offset), text)
    assert '"127.0.0.1"' in text
    # the key is private
    assert os.stat(os.path.join(inst.dir, "tls", "key.pem")).st_mode & 0o077 == 0
    # the certificate names the host
    p = subprocess.run(["openssl", "x509", "-in", os.path.join(inst.dir, "tls", "cert.pem"),
                        "-noout", "-subject", "-ext", "subjectAltName"],
                       capture_output=True, text=True)
    assert "mail.example.test" in p.stdout, p.stdout + p.stderr


def test_init_refuses_existing(inst):
    p = th.run_tern(["init", inst.dir, "--hostname", "mail.example.test", "--bind", "127.0.0.1",
                     "--port-offset", str(inst.offset)])
    fails(p)


def test_config_check_good(inst):
    ok(inst.tern("config", "check"))


def test_config_check_syntax_error_names_line(inst):
    lines = inst.config_text().split("\n")
    lines.insert(4, "this is not libconfig")
    with open(inst.conf, "w") as f:
        f.write("\n".join(lines))
    p = fails(inst.tern("config", "check"))
    assert "tern.conf:5:" in p.stdout + p.stderr, p.stdout + p.stderr


def test_config_check_bad_value_names_line(inst):
    inst.set("limits.message_size", "lots")
    lines = inst.config_text().split("\n")
    line = next(i + 1 for i, l in enumerate(lines) if re.match(r"\s*message_size\s*=", l))
    p = fails(inst.tern("config", "check"))
    assert "tern.conf:%d:" % line in p.stdout + p.stderr, p.stdout + p.stderr
    assert "message_size" in p.stdout + p.stderr


def test_config_check_unknown_setting(inst):
    inst.set("limits.no_such_limit", 3)
    lines = inst.config_text().split("\n")
    line = next(i + 1 for i, l in enumerate(lines) if "no_such_limit" in l)
    p = fails(inst.tern("config", "check"))
    assert "tern.conf:%d:" % line in p.stdout + p.stderr, p.stdout + p.stderr


def test_serve_refuses_bad_config(inst):
    inst.set("limits.smtp_line", 10)
    p = subprocess.run([th.TERN_BIN, "-c", inst.conf, "serve"], capture_output=True, text=True,
                       timeout=30 * th.SCALE)
    assert p.returncode != 0
    assert "tern.conf:" in p.stderr


# ---- domains, users, aliases ----------------------------------------------------

def test_domain_add_list_remove(inst):
    ok(inst.tern("domain", "add", "example.test"))
    ok(inst.tern("domain", "add", "Other.Test"))
    out = ok(inst.tern("domain", "list")).stdout
    assert "example.test" in out.split() and "other.test" in out.split(), out
    fails(inst.tern("domain", "add", "example.test"))
    fails(inst.tern("domain", "add", "not a domain"))
    ok(inst.tern("domain", "remove", "other.test"))
    out = ok(inst.tern("domain", "list")).stdout
    assert "other.test" not in out
    fails(inst.tern("domain", "remove", "other.test"))


def test_domain_remove_with_users_refused(inst):
    ok(inst.tern("domain", "add", "example.test"))
    ok(inst.tern("user", "add", "a@example.test", input="pw-123456\n"))
    fails(inst.tern("domain", "remove", "example.test"))
    assert "a@example.test" in ok(inst.tern("user", "list")).stdout


def test_user_add_list_remove(inst):
    ok(inst.tern("domain", "add", "example.test"))
    ok(inst.tern("user", "add", "a@example.test", input="first-pw-1\n"))
    ok(inst.tern("user", "add", "B@Example.test", "--quota", "1M", input="second-pw-2\n"))
    out = ok(inst.tern("user", "list")).stdout
    assert "a@example.test" in out and "b@example.test" in out, out
    fails(inst.tern("user", "add", "a@example.test", input="x-pw-333\n"))
    fails(inst.tern("user", "add", "z@unknown.test", input="x-pw-333\n"))
    fails(inst.tern("user", "add", "not-an-address", input="x-pw-333\n"))
    ok(inst.tern("user", "remove", "a@example.test"))
    out = ok(inst.tern("user", "list")).stdout
    assert "a@example.test" not in out and "b@example.test" in out
    fails(inst.tern("user", "remove", "a@example.test"))
    # stored as a hash, never in clear
    rows = inst.query("SELECT * FROM users")
    assert "second-pw-2" not in repr(rows)


def test_password_never_from_argv(inst):
    ok(inst.tern("domain", "add", "example.test"))
    p = inst.tern("user", "add", "p@example.test", "secret-on-argv", input="")
    assert p.returncode != 0, "a password argument must be refused"
    assert "p@example.test" not in inst.tern("user", "list").stdout
    # an empty password on stdin is refused too
    fails(inst.tern("user", "add", "p@example.test", input="\n"))


def test_alias_add_list_remove(inst):
    ok(inst.tern("domain", "add", "example.test"))
    ok(inst.tern("user", "add", "a@example.test", input="pw-aaaaaa\n"))
    ok(inst.tern("alias", "add", "team@example.test", "a@example.test", "x@remote.test"))
    ok(inst.tern("alias", "add", "@example.test", "a@example.test"))
    out = ok(inst.tern("alias", "list")).stdout
    assert "team@example.test" in out and "x@remote.test" in out and "@example.test" in out, out
    fails(inst.tern("alias", "add", "team@unknown.test", "a@example.test"))
    ok(inst.tern("alias", "remove", "team@example.test"))
    out = ok(inst.tern("alias", "list")).stdout
    assert "team@example.test" not in out


# ---- Dovecot import, live directory changes -------------------------------------

def ssha512(password, salt):
    return "{SSHA512}" + base64.b64encode(hashlib.sha512(password.encode() + salt).digest()
                                          + salt).decode()


def auth_plain(port, user, password):
    with SmtpConn(port, tls=True) as c:
        c.expect(None, 220)
        c.expect("EHLO client.test", 250)
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return c.cmd("AUTH PLAIN " + tok).code


def test_import_dovecot(tern_factory, tmp_path):
    srv = tern_factory(populate_users=False, start=False, name="import")
    ok(srv.tern("domain", "add", "example.test"))
    crypt = subprocess.run(["openssl", "passwd", "-6", "-salt", "saltsalt", "crypt-Pass-1"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert crypt.startswith("$6$")
    pf = tmp_path / "passwd"
    pf.write_text("# Dovecot passwd-file\n"
                  "imp1@example.test:{SHA512-CRYPT}%s:::::\n"
                  "imp2@example.test:%s::::::userdb_quota_rule=*:storage=10M\n\n"
                  % (crypt, ssha512("ssha-Pass-2", b"\x01\x02salt!")))
    p = ok(srv.tern("user", "import-dovecot", str(pf)))
    out = ok(srv.tern("user", "list")).stdout
    assert "imp1@example.test" in out and "imp2@example.test" in out, p.stdout + out
    srv.start()
    port = srv.port("submissions")
    assert auth_plain(port, "imp1@example.test", "crypt-Pass-1") == 235
    assert auth_plain(port, "imp2@example.test", "ssha-Pass-2") == 235


def test_running_server_sees_user_changes(tern_factory):
    srv = tern_factory(name="live")
    port = srv.port("smtp")

    def rcpt(addr):
        with SmtpConn(port) as c:
            c.expect(None, 220)
            c.expect("EHLO client.test", 250)
            c.expect("MAIL FROM:<x@remote.test>", 250)
            return c.cmd("RCPT TO:<%s>" % addr)

    assert rcpt("new@example.test").code == 550
    ok(srv.tern("user", "add", "new@example.test", input="new-Pass-77\n"))
    assert rcpt("new@example.test").code == 250
    assert auth_plain(srv.port("submissions"), "new@example.test", "new-Pass-77") == 235
    ok(srv.tern("user", "remove", "new@example.test"))
    assert rcpt("new@example.test").code == 550
    ok(srv.tern("domain", "add", "later.test"))
    ok(srv.tern("alias", "add", "x@later.test", "a@example.test"))
    assert rcpt("x@later.test").code == 250


def test_store_verify(tern_factory):
    srv = tern_factory(name="verify")
    for i in range(3):
        r = send_message(srv.port("smtp"), "v@remote.test", ["a@example.test", "b@example.test"],
                         b"Subject: verify %d\r\n\r\nbody %d\r\n" % (i, i))
        assert r.code == 250
    srv.stop()
    ok(srv.tern("store", "verify"))
    rows = srv.message_rows("a@example.test")
    assert len(rows) == 3
    os.unlink(rows[1][2])
    p = srv.tern("store", "verify")
    assert p.returncode != 0, p.stdout + p.stderr
    assert os.path.basename(rows[1][2]) in p.stdout + p.stderr, p.stdout + p.stderr
