"""A private Dovecot IMAP instance for bench/imap (bench.py and idle.py).

Everything lives in one folder D: D/dovecot.conf, base_dir D/run, state_dir
D/state, log D/dovecot.log, the passwd-file D/passwd and the homes
D/home/USER/Maildir.  It listens on a free high port of 127.0.0.1 only and
never touches /etc/dovecot, the system instance, or ports 143/993.

Fairness rules this module follows (see docs/performance.md):
- the passdb is a passwd-file holding exactly the hash string Tern stores
  for the same user (yescrypt as {CRYPT}, or an imported {SSHA512}), so a
  LOGIN costs the same password check on both servers;
- Dovecot's documented high-performance login mode (service_count = 0,
  one long-lived login process per core) and process/client limits raised
  above what the benchmark opens, so no connection is refused;
- Maildir files named as Dovecot's own delivery names them
  (",S=size,W=vsize"), so it need not stat each file for its size.

Also: memory and CPU of a process tree read from /proc, for both servers.
"""
import os
import pwd
import signal
import socket
import subprocess
import time

DOVECOT = "/usr/sbin/dovecot"

BASE_CONF = """
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100000
# documented Maildir performance setting: trust the directory mtimes
maildir_very_dirty_syncs = yes
default_process_limit = {plimit}
default_client_limit = {climit}
passdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
# the documented high-performance login mode: long-lived login processes,
# one per core, each serving many connections
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {ports}
  }}
  service_count = 0
  process_min_avail = {cores}
  client_limit = {climit}
  # with service_count = 0 one process holds every TLS session: the
  # default 256 MB address space is full at about 5000 of them
  vsz_limit = 4G
}}
service imap {{
  process_limit = {plimit}
  process_min_avail = {imap_avail}
}}
"""

TLS_CONF = """
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
"""

# Dovecot's documented imap-hibernate setup (configuration manual,
# "Hibernation"): the imap process hands an IDLEing connection to the one
# imap-hibernate process after imap_hibernate_timeout
HIBERNATE_CONF = """
imap_hibernate_timeout = {timeout}
service imap {{
  unix_listener imap-master {{
    user = $default_internal_user
  }}
  extra_groups = $default_internal_group
}}
service imap-hibernate {{
  unix_listener imap-hibernate {{
    mode = 0660
    group = $default_internal_group
  }}
  client_limit = {climit}
  vsz_limit = 4G
}}
"""


# optional: full-text search with the fts-xapian plugin (Debian
# dovecot-fts-xapian), indexed at delivery/first search as its README says
FTS_CONF = """
mail_plugins = $mail_plugins fts fts_xapian
plugin {
  fts = xapian
  fts_xapian = partial=3 full=20 verbose=0
  fts_autoindex = yes
  fts_enforced = yes
}
service indexer-worker {
  vsz_limit = 2G
}
"""
FTS_PLUGIN = "/usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so"

# optional: RFC 4978 COMPRESS=DEFLATE.  In Dovecot 2.3 the imap_zlib
# plugin (Debian dovecot-imapd: lib30_imap_zlib_plugin.so) provides the
# command and depends on the zlib mail plugin (lib20_zlib_plugin.so),
# which only reads compressed mail files since zlib_save is not set
COMPRESS_CONF = """
mail_plugins = $mail_plugins zlib
protocol imap {
  mail_plugins = $mail_plugins imap_zlib
}
"""
COMPRESS_PLUGIN = "/usr/lib/dovecot/modules/lib30_imap_zlib_plugin.so"


def available():
    """Why the private Dovecot cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists(DOVECOT) or not os.path.exists("/usr/lib/dovecot/imap"):
        return "needs the Debian package dovecot-imapd"
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def maildir_name(i, data, flags=""):
    """A cur/ file name as Dovecot's delivery writes it (size and CRLF size
    in the name; the messages here already have CRLF line ends)."""
    vsize = len(data) + data.count(b"\n") - data.count(b"\r\n")
    return "%d.M%dP1.bench,S=%d,W=%d:2,%s" % (1700000000 + i, i, len(data), vsize, flags)


class Dovecot:
    """One private instance: write(), then start(), then stop()."""

    def __init__(self, d):
        self.d = d
        self.conf = os.path.join(d, "dovecot.conf")
        self.port = free_port()
        self.port_tls = 0
        self.started = False
        self.nobody = pwd.getpwnam("nobody")
        os.makedirs(d, exist_ok=True)

    def home(self, user):
        return os.path.join(self.d, "home", user)

    def maildir(self, user, folders=()):
        """Create USER's Maildir (and subfolders); returns its path."""
        md = os.path.join(self.home(user), "Maildir")
        for f in ("",) + tuple("." + x for x in folders):
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(md, f, sub), exist_ok=True)
        if folders:
            with open(os.path.join(md, "subscriptions"), "w") as fh:
                fh.write("".join(x + "\n" for x in folders))
        return md

    def passwd(self, users):
        """users: [(address, Tern's stored hash string)]."""
        with open(os.path.join(self.d, "passwd"), "w") as f:
            for addr, hashed in users:
                if hashed.startswith("$"):
                    f.write("%s:{CRYPT}%s\n" % (addr, hashed))
                elif hashed.startswith("{"):
                    f.write("%s:%s\n" % (addr, hashed))
                else:
                    raise RuntimeError("unknown hash form for %s: %.12s..." % (addr, hashed))

    def write(self, clients, tls=None, hibernate=None, imap_avail=0, fts=False,
              compress=False):
        """The config: plaintext listener, or (tls=(cert, key)) TLS only;
        hibernate="2s" adds imap-hibernate; fts adds fts-xapian; compress
        adds COMPRESS=DEFLATE (imap_zlib)."""
        plimit = max(1024, clients + 200)
        # auth and anvil serve every login and imap process: above their sum
        climit = 3 * plimit
        if tls:
            self.port_tls, self.port = free_port(), 0
        text = BASE_CONF.format(d=self.d, port=self.port, ports=self.port_tls,
                                uid=self.nobody.pw_uid, gid=self.nobody.pw_gid,
                                plimit=plimit, climit=climit, cores=os.cpu_count() or 2,
                                imap_avail=imap_avail)
        text += TLS_CONF.format(cert=tls[0], key=tls[1]) if tls else "ssl = no\n"
        if hibernate:
            text += HIBERNATE_CONF.format(timeout=hibernate, climit=climit)
        if fts:
            text += FTS_CONF
        if compress:
            text += COMPRESS_CONF
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self, timeout=15):
        subprocess.run(["chown", "-R", "%d:%d" % (self.nobody.pw_uid, self.nobody.pw_gid),
                        os.path.join(self.d, "home")], check=True)
        # the daemon keeps its stdout/stderr: never a pipe we would wait on
        with open(os.path.join(self.d, "start.log"), "w") as out:
            p = subprocess.run([DOVECOT, "-c", self.conf], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=out)
        if p.returncode != 0:
            raise RuntimeError("dovecot did not start; see %s/start.log" % self.d)
        self.started = True
        port = self.port or self.port_tls
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot does not listen; see %s/dovecot.log" % self.d)

    def master_pid(self):
        with open(os.path.join(self.d, "run", "master.pid")) as f:
            return int(f.read().split()[0])

    def pids(self):
        return tree(self.master_pid())

    def stop(self):
        """Stop the instance and make sure none of its processes is left."""
        if not self.started:
            return
        try:
            pids = self.pids()
        except OSError:
            pids = []
        subprocess.run([DOVECOT, "-c", self.conf, "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        for p in pids:
            if alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self.started = False

    def log_warnings(self):
        try:
            with open(os.path.join(self.d, "dovecot.log")) as f:
                return [l.rstrip() for l in f if "Warning" in l or "Error" in l or "Fatal" in l]
        except OSError:
            return []


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return ") Z" not in f.read()
    except OSError:
        return False


def _stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def tree(root):
    """root and all its descendants (from /proc)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(int(_stat(int(d))[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def memory(pids):
    """(sum of RSS, sum of PSS) in KiB over pids.  RSS counts pages shared
    between processes once per process; PSS divides them among the sharers."""
    rss = pss = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def memory_by_name(pids):
    """{process name: RSS KiB} summed over pids with that name."""
    out = {}
    for p in pids:
        out[comm(p)] = out.get(comm(p), 0) + memory([p])[0]
    return out


def growth(before, after, count):
    """'name +X KiB/conn, ...' from two memory_by_name() results."""
    parts = []
    for name in sorted(set(before) | set(after)):
        d = (after.get(name, 0) - before.get(name, 0)) / count
        if abs(d) >= 0.05:
            parts.append("%s %+.1f" % (name, d))
    return ", ".join(parts)


def cpu_seconds(pids):
    """User+system CPU of pids, with that of their reaped children."""
    t = 0
    for p in pids:
        try:
            v = _stat(p)
            t += int(v[11]) + int(v[12]) + int(v[13]) + int(v[14])
        except (OSError, IndexError):
            pass
    return t / os.sysconf("SC_CLK_TCK")


def settle(pids_fn, quiet=1.5, limit=120):
    """Wait until the processes pids_fn() lists used no CPU for quiet
    seconds (Tern indexes new mail for search in the background)."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pids_fn())
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pids_fn())
        if now == last:
            return True
        last = now
    return False
