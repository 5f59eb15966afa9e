"""A private Roundcube (Debian's roundcube-core + roundcube-sqlite3) served
by PHP's built-in web server on a free loopback port, configured against a
Tern instance.

Layout of the instance folder DIR (nothing outside it is written):
    DIR/config/config.inc.php   from tests/roundcube/config.inc.php.in
    DIR/config/defaults.inc.php, mimetypes.php   symlinks to Debian's copies
    DIR/roundcube.db            Roundcube's SQLite database (schema from
                                /usr/share/roundcube/SQL/sqlite.initial.sql)
    DIR/temp/, DIR/logs/        temp files; imap.log, smtp.log, errors.log
    DIR/php.log                 the PHP server's own output

Roundcube reads its configuration folder from the ROUNDCUBE_CONFIG_DIR
environment variable (program/include/iniset.php), so Debian's
/etc/roundcube is never read or changed. The document root is Debian's
/var/lib/roundcube/public_html (read only).

Invariants: every wait is bounded; stop() leaves no PHP process running
(SIGTERM, then SIGKILL of its process group); only 127.0.0.1 is used.

Run by hand against a running Tern:
    python3 tests/roundcube/roundcube.py IMAP_HOST SMTP_HOST CAFILE PEER_NAME [PORT]
e.g. tls://127.0.0.1:143 tls://127.0.0.1:587 /etc/tern/tls/cert.pem
mail.example.com 8080, then browse to http://127.0.0.1:8080/.
"""
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "config.inc.php.in")
DOCROOT = "/var/lib/roundcube/public_html"
SCHEMA = "/usr/share/roundcube/SQL/sqlite.initial.sql"
ETC = "/etc/roundcube"
PHP = "/usr/bin/php"
# Debian packages this needs (also in scripts/deps.sh); php8.2-cgi keeps apt
# from choosing Apache's PHP module (and apache2) for roundcube-core's "php"
PACKAGES = ("roundcube-core roundcube-sqlite3 php-cli php8.2-cgi php-sqlite3 php-mbstring php-intl"
            " php-xml")


class RoundcubeError(Exception):
    pass


def missing_parts():
    """Files the Debian packages provide that are not there (empty = ok)."""
    need = [PHP, os.path.join(DOCROOT, "index.php"), SCHEMA,
            os.path.join(ETC, "defaults.inc.php"), os.path.join(ETC, "mimetypes.php")]
    out = [p for p in need if not os.path.exists(p)]
    if os.path.exists(PHP):
        mods = subprocess.run([PHP, "-m"], capture_output=True, text=True, timeout=30).stdout.lower()
        for m in ("pdo_sqlite", "mbstring", "intl", "dom", "openssl"):
            if m not in mods.split():
                out.append("php module " + m)
    return out


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Roundcube:
    """One Roundcube instance in its own temporary folder."""

    def __init__(self, imap_host, smtp_host, cafile, peer_name, port=None, workdir=None):
        missing = missing_parts()
        if missing:
            raise RoundcubeError("Roundcube is not installed (missing: %s); run scripts/deps.sh "
                                 "or apt-get install --no-install-recommends %s"
                                 % (", ".join(missing), PACKAGES))
        self.dir = workdir or tempfile.mkdtemp(prefix="tern-roundcube-")
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d/" % self.port
        self.proc = None
        self.confdir = os.path.join(self.dir, "config")
        try:
            self._setup(imap_host, smtp_host, cafile, peer_name)
        except BaseException:
            if not workdir:
                shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _setup(self, imap_host, smtp_host, cafile, peer_name):
        """Write the config folder and create the database."""
        for d in (self.confdir, os.path.join(self.dir, "temp"), os.path.join(self.dir, "logs")):
            os.makedirs(d, exist_ok=True)
        for name in ("defaults.inc.php", "mimetypes.php"):
            link = os.path.join(self.confdir, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join(ETC, name), link)
        with open(TEMPLATE) as f:
            text = f.read()
        fields = {"DIR": self.dir, "IMAP_HOST": imap_host, "SMTP_HOST": smtp_host,
                  "CAFILE": os.path.abspath(cafile), "PEER_NAME": peer_name,
                  "DES_KEY": secrets.token_hex(12)}
        for k, v in fields.items():
            if "'" in v or "\\" in v:
                raise RoundcubeError("unsafe value for %s: %r" % (k, v))
            text = text.replace("@%s@" % k, v)
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise RoundcubeError("unfilled fields in the config template: %s" % left)
        with open(os.path.join(self.confdir, "config.inc.php"), "w") as f:
            f.write(text)
        db = os.path.join(self.dir, "roundcube.db")
        if not os.path.exists(db):
            with open(SCHEMA) as f:
                schema = f.read()
            con = sqlite3.connect(db)
            try:
                con.executescript(schema)
                con.commit()
            finally:
                con.close()

    def log_path(self, name):
        """Path of one of Roundcube's logs: "imap", "smtp", "errors"."""
        return os.path.join(self.dir, "logs", name + ".log")

    def read_log(self, name):
        try:
            with open(self.log_path(name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self, timeout=20):
        env = dict(os.environ)
        env["ROUNDCUBE_CONFIG_DIR"] = self.confdir
        # the browser loads a page and several scripts at once: serve them in
        # parallel rather than one by one
        env["PHP_CLI_SERVER_WORKERS"] = "4"
        log = open(os.path.join(self.dir, "php.log"), "ab")
        self.proc = subprocess.Popen(
            [PHP, "-d", "error_log=" + os.path.join(self.dir, "logs", "php-errors.log"),
             "-d", "log_errors=1", "-d", "display_errors=0",
             "-S", "127.0.0.1:%d" % self.port, "-t", DOCROOT],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout):
        """Wait until the login page is served (bounded)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RoundcubeError("php -S exited with %s; output:\n%s"
                                     % (self.proc.returncode, self.php_output()))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/")
                r = c.getresponse()
                body = r.read().decode("utf-8", "replace")
                c.close()
                if r.status == 200 and "rcmloginuser" in body:
                    return
                last = "HTTP %d: %s" % (r.status, body[:500])
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise RoundcubeError("Roundcube login page not served in %ds (last: %s)\nerrors.log:\n%s"
                             % (timeout, last, self.read_log("errors")))

    def php_output(self):
        try:
            with open(os.path.join(self.dir, "php.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self):
        self.stop()
        if not os.environ.get("TERN_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    rc = Roundcube(argv[1], argv[2], argv[3], argv[4], int(argv[5]) if len(argv) > 5 else None)
    rc.start()
    print("Roundcube on %s (folder %s); Ctrl-C stops it" % (rc.url, rc.dir))
    try:
        rc.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        rc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
