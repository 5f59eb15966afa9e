"""Start and drive a real `tern` server for integration tests.

TernServer makes a fresh instance in a temporary folder with `tern init`
(loopback only, ports moved by a free offset in 20000-30990), lets a test
change config values, adds domains/users/aliases through the CLI (passwords
on stdin, never argv), runs `tern serve` in the foreground in its own
process group (stderr to DIR/server.log), waits for the SMTP greeting, and
reads the message store read-only with sqlite3.

Invariants: every wait is bounded; stop() always leaves no process of the
instance running (SIGTERM, then SIGKILL of the whole process group); only
127.0.0.0/8 is used (127.0.0.1 unless the test gives another address, which
it does only inside a network namespace of its own: tests/harness/netns.py).
"""
import os
import pwd
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TERN_BIN = os.environ.get("TERN_BIN") or os.path.join(REPO, "build", "tern")
SANITIZED = bool(os.environ.get("TERN_SANITIZED"))
SCALE = 3 if SANITIZED else 1          # time multiplier for waits
HOSTNAME = "mail.example.test"

STANDARD_PORTS = {
    "smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993,
    "pop3": 110, "pop3s": 995, "http": 80, "https": 443,
}

_used_offsets = set()


class TernError(Exception):
    pass


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_offset():
    """An offset N in 20000-30990 such that every standard port + N is free
    on 127.0.0.1 (and not handed out before in this process).  Every port
    stays below 32768, where Linux's ephemeral range starts: a client
    socket's local port there would make our listener's bind fail."""
    rnd = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        off = rnd.randrange(20000, 31000, 10)
        if off in _used_offsets:
            continue
        if all(_port_free(p + off) for p in STANDARD_PORTS.values()):
            _used_offsets.add(off)
            return off
    raise TernError("no free port offset found")


def libconfig_value(v):
    """Python value -> libconfig literal."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -2**31 <= v < 2**31 else "%dL" % v
    if isinstance(v, (list, tuple)):
        return "[ " + ", ".join(libconfig_value(x) for x in v) + " ]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError("no libconfig form for %r" % (v,))


def config_set(text, key, value):
    """Set dotted key ("limits.connections_per_ip") in libconfig text.

    Replaces an existing `name = ...;` line (commented-out or not) inside the
    right group, keeping a trailing comment; otherwise inserts the setting at
    the start of the group, or appends a new group.  Handles the layout that
    `tern init` writes (one setting per line, groups as `name = {` ... `};`)."""
    parts = key.split(".")
    leaf, groups = parts[-1], parts[:-1]
    lit = libconfig_value(value)
    lines = text.split("\n")
    stack = []
    group_open = {}          # tuple(path) -> line index of "name = {"
    set_re = re.compile(r"^(\s*)(?:#\s*|//\s*)?(%s)\s*[=:]\s*(.*?);(.*)$" % re.escape(leaf))
    open_re = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*[=:]?\s*\{\s*(#.*)?$")
    close_re = re.compile(r"^\s*\}\s*[;,]?\s*(#.*)?$")
    for i, ln in enumerate(lines):
        m = open_re.match(ln)
        if m:
            stack.append(m.group(1))
            group_open[tuple(stack)] = i
            continue
        if close_re.match(ln):
            if stack:
                stack.pop()
            continue
        if stack == groups:
            m = set_re.match(ln)
            if m:
                trailing = m.group(4)
                if trailing.strip() and not trailing.strip().startswith("#"):
                    trailing = ""
                lines[i] = "%s%s = %s;%s" % (m.group(1), leaf, lit, trailing)
                return "\n".join(lines)
    if not groups:
        return text.rstrip("\n") + "\n%s = %s;\n" % (leaf, lit)
    if tuple(groups) in group_open:
        i = group_open[tuple(groups)]
        lines.insert(i + 1, "  %s = %s;" % (leaf, lit))
        return "\n".join(lines)
    # new (nested) group at the end, one setting per line as `tern init`
    # writes, so that later settings of the same group go into it
    out = ["%s%s = {" % ("  " * d, g) for d, g in enumerate(groups)]
    out.append("%s%s = %s;" % ("  " * len(groups), leaf, lit))
    out += ["%s};" % ("  " * d) for d in reversed(range(len(groups)))]
    return text.rstrip("\n") + "\n" + "\n".join(out) + "\n"


def run_tern(args, conf=None, input=None, timeout=None, check=False):
    """Run the tern binary; returns CompletedProcess with str stdout/stderr."""
    cmd = [TERN_BIN] + (["-c", conf] if conf else []) + list(args)
    p = subprocess.run(cmd, input=input, capture_output=True, text=True,
                       timeout=timeout or 60 * SCALE)
    if check and p.returncode != 0:
        raise TernError("%s failed (exit %d): %s%s" % (" ".join(cmd), p.returncode,
                                                        p.stdout, p.stderr))
    return p


def _children(pid):
    """PIDs whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        # field 4 is the ppid; comm (field 2) may hold spaces, so split after ')'
        rest = st[st.rfind(")") + 2:].split()
        if len(rest) > 1 and int(rest[1]) == pid:
            out.append(int(d))
    return out


def proc_uid(pid):
    """Real uid of a process, from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("Uid:"):
                return int(ln.split()[1])
    raise TernError("no Uid line for %d" % pid)


class TernServer:
    """One Tern instance in its own temporary folder."""

    def __init__(self, config=None, name="tern", offset=None, host="127.0.0.1", spf=False,
                 dkim=False, dmarc=False):
        """offset: the port offset; None picks a free one (0, the standard
        ports, only inside a network namespace of the test's own).  host:
        the one address it listens on (another 127.x address only inside
        such a namespace, where several instances then each have port 25).
        spf: keep SPF checks on port 25 (mailauth.spf); off by default, since
        they would ask the machine's resolver unless the test points the
        dns group at a test DNS.  dkim: keep DKIM verification on port 25
        (mailauth.dkim); off by default for the same reason, and so that
        other tests' stored bytes carry no Authentication-Results field.
        dmarc: keep DMARC evaluation on port 25 (mailauth.dmarc, which also
        needs spf and dkim); off by default so that the SPF and DKIM tests'
        fields hold their clauses alone."""
        if not os.access(TERN_BIN, os.X_OK):
            raise TernError("tern binary not found at %s (set TERN_BIN)" % TERN_BIN)
        self.dir = tempfile.mkdtemp(prefix="tern-it-%s-" % name)
        # the worker drops to the service user when run as root: let it in
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "tern.conf")
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "server.log")
        self.offset = free_port_offset() if offset is None else offset
        self.host = host
        self.proc = None
        p = run_tern(["init", self.dir, "--hostname", HOSTNAME, "--bind", host,
                      "--port-offset", str(self.offset)])
        if p.returncode != 0 or not os.path.exists(self.conf):
            raise TernError("tern init failed (exit %d): %s%s" % (p.returncode, p.stdout, p.stderr))
        if not spf:
            self.set("mailauth.spf", False)
        if not dkim:
            self.set("mailauth.dkim", False)
        if not dmarc:
            self.set("mailauth.dmarc", False)
        for k, v in (config or {}).items():
            self.set(k, v)

    # ---- configuration -------------------------------------------------
    def port(self, kind="smtp"):
        return STANDARD_PORTS[kind] + self.offset

    def config_text(self):
        with open(self.conf) as f:
            return f.read()

    def set(self, key, value):
        """Change one setting in tern.conf (applies at next start/reload)."""
        text = config_set(self.config_text(), key, value)
        with open(self.conf, "w") as f:
            f.write(text)

    # ---- CLI -------------------------------------------------------------
    def tern(self, *args, input=None, check=False, timeout=None):
        return run_tern(args, conf=self.conf, input=input, check=check, timeout=timeout)

    def add_domain(self, name):
        return self.tern("domain", "add", name, check=True)

    def add_user(self, address, password, quota=None):
        args = ["user", "add", address]
        if quota is not None:
            args += ["--quota", str(quota)]
        return self.tern(*args, input=password + "\n", check=True)

    def add_alias(self, alias, *targets):
        return self.tern("alias", "add", alias, *targets, check=True)

    # ---- process control -------------------------------------------------
    def start(self, wait=True, env=None):
        if self.proc is not None and self.proc.poll() is None:
            raise TernError("already running")
        log = open(self.logfile, "ab")
        e = dict(os.environ)
        if env:
            e.update(env)
        self.proc = subprocess.Popen([TERN_BIN, "-c", self.conf, "serve"], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True, env=e)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        """Wait for a 220 greeting on the SMTP port (10 s, longer sanitized)."""
        deadline = time.monotonic() + (timeout or 10 * SCALE)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TernError("tern serve exited with %s before ready; log:\n%s"
                                % (self.proc.returncode, self.log_tail()))
            try:
                with socket.create_connection((self.host, self.port("smtp")), timeout=2) as s:
                    s.settimeout(2)
                    data = b""
                    while b"\n" not in data:
                        chunk = s.recv(512)
                        if not chunk:
                            break
                        data += chunk
                    if data.startswith(b"220"):
                        try:
                            s.sendall(b"QUIT\r\n")
                        except OSError:
                            pass
                        return
                    last = data
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise TernError("server not ready in time (last: %r); log:\n%s" % (last, self.log_tail()))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def worker_pids(self):
        return _children(self.proc.pid) if self.proc else []

    def wait_worker(self, timeout=None):
        """PID of the (single) worker child, waiting for it to appear."""
        deadline = time.monotonic() + (timeout or 10 * SCALE)
        while time.monotonic() < deadline:
            kids = self.worker_pids()
            if kids:
                return kids[0]
            time.sleep(0.05)
        raise TernError("no worker process")

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=None):
        """SIGTERM the master and wait; then SIGKILL whatever is left.
        Returns the master's exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                rc = self.proc.wait(timeout or 15 * SCALE)
            except subprocess.TimeoutExpired:
                rc = None
        self._kill_group()
        if rc is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        return rc

    def _kill_group(self):
        pid = self.proc.pid
        pids = [pid] + _children(pid)
        for p in list(pids):
            pids += _children(p)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 5 * SCALE
        # wait until the listening ports are released by every process
        for p in pids[1:]:
            while os.path.exists("/proc/%d" % p) and time.monotonic() < deadline:
                try:
                    with open("/proc/%d/stat" % p) as f:
                        if ") Z" in f.read():
                            break
                except OSError:
                    break
                time.sleep(0.02)

    def kill9_all(self):
        """SIGKILL the master and every process of the instance."""
        if self.proc is None:
            return
        self._kill_group()
        try:
            self.proc.wait(5 * SCALE)
        except subprocess.TimeoutExpired:
            pass

    def restart(self):
        self.stop()
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        self.stop()
        if os.environ.get("TERN_KEEP"):
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- logs --------------------------------------------------------------
    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_reports(self):
        """Lines of the server log where ASan, LSan or UBSan reported."""
        return [l for l in self.log().splitlines()
                if "ERROR: AddressSanitizer" in l or "ERROR: LeakSanitizer" in l
                or "runtime error:" in l]

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_log(self, pattern, timeout=None, start=0):
        """Wait until regex pattern appears in the log after offset start."""
        deadline = time.monotonic() + (timeout or 10 * SCALE)
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.log(), start)
            if m:
                return m
            time.sleep(0.05)
        raise TernError("log never matched %r; tail:\n%s" % (pattern, self.log_tail()))

    # ---- the store (read-only) ----------------------------------------------
    def _db(self):
        path = os.path.join(self.data, "index.db")
        if not os.path.exists(path):
            raise TernError("no index.db in %s" % self.data)
        return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)

    def _fix_owner(self):
        """A root reader may create index.db-shm; give it to the store's owner
        so the (unprivileged) server can still use it."""
        path = os.path.join(self.data, "index.db")
        try:
            st = os.stat(path)
        except OSError:
            return
        for suffix in ("-shm", "-wal"):
            p = path + suffix
            try:
                if os.stat(p).st_uid != st.st_uid:
                    os.chown(p, st.st_uid, st.st_gid)
            except OSError:
                pass

    def message_path(self, file):
        """Absolute path of a messages.file value: absolute already, relative
        to the data folder, or a bare name under messages/<first 2 chars>/."""
        if os.path.isabs(file):
            return file
        cands = [os.path.join(self.data, file), os.path.join(self.data, "messages", file)]
        if "/" not in file:
            cands.insert(0, os.path.join(self.data, "messages", file[:2], file))
        for p in cands:
            if os.path.exists(p):
                return p
        return cands[0]

    def message_rows(self, address, mailbox="INBOX"):
        """[(uid, size, absolute path)] of a user's mailbox in UID order."""
        db = self._db()
        try:
            rows = db.execute(
                "SELECT m.uid, m.size, m.file FROM messages m"
                " JOIN mailboxes b ON m.mailbox_id = b.id"
                " JOIN users u ON b.user_id = u.id"
                " WHERE u.address = ? AND b.name = ? ORDER BY m.uid",
                (address.lower(), mailbox)).fetchall()
        finally:
            db.close()
            self._fix_owner()
        return [(uid, size, self.message_path(f)) for uid, size, f in rows]

    def messages(self, address, mailbox="INBOX"):
        """Bytes of each stored message of address's mailbox, in UID order."""
        out = []
        for _uid, _size, path in self.message_rows(address, mailbox):
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def query(self, sql, args=()):
        db = self._db()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()
            self._fix_owner()


def split_stored(data):
    """Split a stored copy into (trace, message): trace holds the lines Tern
    added (Return-Path, Delivered-To, Received with its continuation lines),
    message the bytes as sent.  Raises AssertionError when the top does not
    look like Tern's."""
    assert data.startswith(b"Return-Path: <"), data[:200]
    pos = 0
    seen_received = False
    while True:
        end = data.index(b"\r\n", pos) + 2
        line = data[pos:end]
        if pos > 0 and line[:1] in (b" ", b"\t"):
            pos = end
            continue
        if seen_received:
            break
        if line.startswith(b"Received:"):
            seen_received = True
        elif not (line.startswith(b"Return-Path:") or line.startswith(b"Delivered-To:")):
            raise AssertionError("unexpected trace line %r" % line)
        pos = end
    assert seen_received, data[:300]
    return data[:pos], data[pos:]


def wait_for(pred, timeout=30, interval=0.2):
    """pred()'s first true value within timeout seconds (scaled under the
    sanitizers), else its last value."""
    end = time.time() + timeout * SCALE
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def find_stored(server, address, marker, mailbox="INBOX"):
    """Stored copies in address's mailbox whose bytes contain marker."""
    if isinstance(marker, str):
        marker = marker.encode()
    return [m for m in server.messages(address, mailbox) if marker in m]


def service_uid(name="tern"):
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None
