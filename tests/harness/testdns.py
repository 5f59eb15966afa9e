"""Test DNS: a real authoritative server (Debian's nsd) on a free loopback
port, serving zones the test writes, optionally DNSSEC-signed with
ldns-keygen/ldns-signzone; and a tiny responder (UDP and TCP, standard
library only) that answers SERVFAIL or REFUSED, or stays silent, for the
zones it is given, for temporary-failure and timeout cases.

    with TestDNS() as dns:
        dns.zone("example.test", ["@ MX 10 mx1", "mx1 A 192.0.2.1"])
        dns.zone("signed.test", ["@ A 192.0.2.2"], dnssec=True)
        dns.zone("bogus.test", ["@ A 192.0.2.3"], dnssec="wrong-key")
        dns.responder("fail.test", "servfail")
        dns.responder("slow.test", "silent")
        dns.start()
        conf_text = dns.tern_config(timeout=2)   # a `dns = { ... };` group

Records are master-file lines relative to the zone (TTL and class may be
left out); an SOA and an NS record are added.  dnssec=True signs the zone
and puts its key-signing key's DS into the trust anchor file
(dns.anchor_file); dnssec="wrong-key" signs it with one key but anchors a
different one, so every answer from it is bogus.

The zone "." (the root) may be served too, holding names anywhere.  A
responder rule may cover one name only (exact=True) and only some query
types (qtypes, or every type but except_qtypes); with relay=True the
responder passes every query no rule covers to nsd and returns its answer,
so one server address (dns.responder_port) can serve nsd's data with
chosen names silent, as the SPF suite's TIMEOUT zone data needs:

        dns.zone(".", ["example.com. TXT \"v=spf1 -all\""])
        dns.responder("slow.example.com", "silent", exact=True, except_qtypes={16})
        dns.relay = True

Invariants: only 127.0.0.1 and ports in 20000-32767 are used (never 53);
nsd runs in the foreground as a child of the test (no chroot, no user
switch, its own pid file and state under a temporary folder) and stop() -
also called by the context manager and at interpreter exit - kills it and
the responder threads, so no daemon outlives the test; every wait is
bounded.
"""
import atexit
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

NSD = "/usr/sbin/nsd"
LDNS_KEYGEN = "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = "/usr/bin/ldns-signzone"


class TestDNSError(Exception):
    pass


def _free_port(rnd, used=()):
    """A port in 20000-32767 free for both UDP and TCP on 127.0.0.1."""
    for _ in range(500):
        port = rnd.randrange(20000, 32768)
        if port in used:
            continue
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise TestDNSError("no free port found")


def _name_end(msg, pos):
    """Offset just past the (uncompressed) question name at pos, or None."""
    while pos < len(msg):
        n = msg[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0:
            return None
        pos += 1 + n
    return None


def _qname(msg):
    end = _name_end(msg, 12)
    if end is None:
        return None, None
    labels, pos = [], 12
    while msg[pos] != 0:
        n = msg[pos]
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace").lower())
        pos += 1 + n
    return ".".join(labels), end + 4


def _in_zone(name, zone):
    zone = zone.strip(".").lower()
    return name == zone or name.endswith("." + zone)


class _Responder:
    """Answers every query for its zones with rcode (SERVFAIL=2,
    REFUSED=5) or not at all ("silent"), over UDP and TCP.  rules
    [(name, action, exact, qtypes, except_qtypes)] are checked first;
    with relay_port, queries nothing covers go to nsd there."""

    def __init__(self, port):
        self.port = port
        self.zones = {}           # zone -> "servfail" | "refused" | "silent"
        self.rules = []
        self.relay_port = None
        self.queries = 0
        self._stop = threading.Event()
        self._threads = []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)

    def _relay(self, msg, tcp):
        """nsd's reply to msg (over TCP when the query came that way)."""
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET, kind)
        s.settimeout(2)
        try:
            if not tcp:
                s.sendto(msg, ("127.0.0.1", self.relay_port))
                return s.recv(65535)
            s.connect(("127.0.0.1", self.relay_port))
            s.sendall(struct.pack("!H", len(msg)) + msg)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                chunk = s.recv(65535)
                if not chunk:
                    return None
                data += chunk
            return data[2:2 + struct.unpack("!H", data[:2])[0]]
        except OSError:
            return None
        finally:
            s.close()

    def answer(self, msg, tcp=False):
        """The reply to msg, or None to stay silent."""
        if len(msg) < 12:
            return None
        name, qend = _qname(msg)
        if name is None or qend > len(msg):
            return None
        self.queries += 1
        qtype = struct.unpack("!H", msg[qend - 4:qend - 2])[0]
        action = None
        for rname, act, exact, qtypes, except_qtypes in self.rules:
            if not (name == rname if exact else _in_zone(name, rname)):
                continue
            if qtypes is not None and qtype not in qtypes:
                continue
            if except_qtypes is not None and qtype in except_qtypes:
                continue
            action = act
            break
        if action is None:
            for zone, act in self.zones.items():
                if _in_zone(name, zone):
                    action = act
                    break
        if action is None and self.relay_port is not None:
            return self._relay(msg, tcp)
        action = action or "refused"
        if action == "silent":
            return None
        rcode = 2 if action == "servfail" else 5
        flags = struct.unpack("!H", msg[2:4])[0]
        # QR=1, opcode and RD copied, RA=1, the rcode
        out_flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode
        return msg[0:2] + struct.pack("!HHHHH", out_flags, 1, 0, 0, 0) + msg[12:qend]

    def _udp_loop(self):
        while not self._stop.is_set():
            try:
                msg, peer = self.udp.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            reply = self.answer(msg)
            if reply is not None:
                try:
                    self.udp.sendto(reply, peer)
                except OSError:
                    pass

    def _tcp_conn(self, c):
        c.settimeout(2)
        try:
            while not self._stop.is_set():
                hdr = c.recv(2)
                if len(hdr) < 2:
                    return
                n = struct.unpack("!H", hdr)[0]
                msg = b""
                while len(msg) < n:
                    chunk = c.recv(n - len(msg))
                    if not chunk:
                        return
                    msg += chunk
                reply = self.answer(msg, tcp=True)
                if reply is None:
                    # silent: hold the connection until the client gives up
                    self._stop.wait(5)
                    return
                c.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass
        finally:
            c.close()

    def _tcp_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.tcp.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._tcp_conn, args=(c,), daemon=True)
            t.start()

    def start(self):
        for fn in (self._udp_loop, self._tcp_loop):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


class TestDNS:
    """nsd plus the responder, in one temporary folder."""

    def __init__(self):
        for tool in (NSD, LDNS_KEYGEN, LDNS_SIGNZONE):
            if not os.access(tool, os.X_OK):
                raise TestDNSError("%s not found (apt-get install nsd ldnsutils)" % tool)
        self.dir = tempfile.mkdtemp(prefix="tern-testdns-")
        # a server's worker (an unprivileged user) reads the trust anchor file
        os.chmod(self.dir, 0o755)
        self._rnd = random.Random()   # seeded from os.urandom: two made at once differ
        self.port = _free_port(self._rnd)
        self.responder_port = _free_port(self._rnd, used=(self.port,))
        self.anchor_file = os.path.join(self.dir, "trust-anchors.key")
        self.zones = {}           # name -> records
        self.signed = {}          # name -> True | "wrong-key"
        self.responder_zones = {}
        self.responder_rules = []
        self.relay = False        # the responder passes unmatched queries to nsd
        self.proc = None
        self._responder = None
        atexit.register(self.stop)

    # ---- zones ---------------------------------------------------------
    def zone(self, name, records, dnssec=False):
        """Serve zone name with records (master-file lines relative to it)."""
        name = name.strip(".").lower()
        self.zones[name] = list(records)
        if dnssec:
            self.signed[name] = dnssec
        return self

    def responder(self, zone, action, exact=False, qtypes=None, except_qtypes=None):
        """Send zone to the responder: "servfail", "refused" or "silent".
        exact: the name itself only, not the names below it; qtypes /
        except_qtypes: only these query types / every type but these (the
        others are not covered: relayed to nsd with relay=True).  Rules
        with any of these options do not add a stub zone of their own."""
        if action not in ("servfail", "refused", "silent"):
            raise ValueError(action)
        name = zone.strip(".").lower()
        if exact or qtypes is not None or except_qtypes is not None:
            self.responder_rules.append((name, action, exact,
                                         None if qtypes is None else set(qtypes),
                                         None if except_qtypes is None else set(except_qtypes)))
        else:
            self.responder_zones[name] = action
        return self

    def _zone_text(self, name, records):
        origin = name + "." if name else "."      # "" is the root zone
        lines = ["$ORIGIN %s" % origin, "$TTL 300",
                 "@ IN SOA ns1.%s hostmaster.%s 1 3600 600 86400 300" % (origin.lstrip("."),
                                                                         origin.lstrip(".")),
                 "@ IN NS ns1.%s" % origin.lstrip("."),
                 "ns1 IN A 127.0.0.1"]
        lines += records
        return "\n".join(lines) + "\n"

    def _run(self, args, cwd):
        p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise TestDNSError("%s failed: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p.stdout.strip()

    def _keygen(self, name, ksk):
        args = [LDNS_KEYGEN, "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else []) + [name]
        return self._run(args, self.dir)     # prints the base name K<name>+013+<id>

    def _sign(self, name, path, mode):
        ksk = self._keygen(name, True)
        zsk = self._keygen(name, False)
        self._run([LDNS_SIGNZONE, "-f", path + ".signed", path, ksk, zsk], self.dir)
        anchor = ksk
        if mode == "wrong-key":
            anchor = self._keygen(name, True)   # never used for signing
        with open(os.path.join(self.dir, anchor + ".ds")) as f:
            ds = f.read().strip()
        with open(self.anchor_file, "a") as f:
            f.write(ds + "\n")
        return path + ".signed"

    # ---- process control ---------------------------------------------
    def start(self, timeout=10):
        open(self.anchor_file, "a").close()
        conf = [
            "server:",
            "  ip-address: 127.0.0.1",
            "  port: %d" % self.port,
            "  username: \"\"",
            "  chroot: \"\"",
            "  zonesdir: \"%s\"" % self.dir,
            "  pidfile: \"%s/nsd.pid\"" % self.dir,
            "  database: \"\"",
            "  xfrdfile: \"%s/xfrd.state\"" % self.dir,
            "  zonelistfile: \"%s/zone.list\"" % self.dir,
            "  logfile: \"%s/nsd.log\"" % self.dir,
            "  server-count: 1",
            "  tcp-count: 32",
            "  verbosity: 1",
            "  hide-version: yes",
            "  do-ip6: no",
            "remote-control:",
            "  control-enable: no",
        ]
        for name, records in sorted(self.zones.items()):
            path = os.path.join(self.dir, (name or "root") + ".zone")
            with open(path, "w") as f:
                f.write(self._zone_text(name, records))
            if name in self.signed:
                path = self._sign(name, path, self.signed[name])
            conf += ["zone:", "  name: \"%s\"" % (name or "."), "  zonefile: \"%s\"" % path]
        conf_path = os.path.join(self.dir, "nsd.conf")
        with open(conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        if self.zones:
            self.proc = subprocess.Popen([NSD, "-d", "-c", conf_path],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
            self._wait_ready(timeout)
        self._responder = _Responder(self.responder_port)
        self._responder.zones = dict(self.responder_zones)
        self._responder.rules = list(self.responder_rules)
        if self.relay:
            self._responder.relay_port = self.port
        self._responder.start()
        return self

    def _query(self, name, qtype=6):
        """One UDP query to nsd; returns the rcode or None."""
        qid = self._rnd.randrange(65536)
        q = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
        for label in name.strip(".").split("."):
            if label:
                q += bytes([len(label)]) + label.encode()
        q += b"\x00" + struct.pack("!HH", qtype, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            s.sendto(q, ("127.0.0.1", self.port))
            r, _ = s.recvfrom(4096)
            if len(r) >= 12 and r[:2] == q[:2]:
                return r[3] & 0x0F
        except OSError:
            return None
        finally:
            s.close()
        return None

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        first = sorted(self.zones)[0]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestDNSError("nsd exited (%d): %s" % (self.proc.returncode, self.log()))
            if self._query(first) == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise TestDNSError("nsd did not answer within %ss: %s" % (timeout, self.log()))

    def log(self):
        try:
            with open(os.path.join(self.dir, "nsd.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                # the main process only: it stops and reaps its own server
                # processes (a killed group would leave zombies behind)
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(5)
        self.proc = None
        if self._responder is not None:
            self._responder.stop()
            self._responder = None

    def cleanup(self):
        self.stop()
        if not os.environ.get("TERN_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ---- Tern configuration ------------------------------------------
    def stubs(self):
        """[(zone, "127.0.0.1@PORT")] for every zone served."""
        out = [(z or ".", "127.0.0.1@%d" % self.port) for z in sorted(self.zones)]
        out += [(z, "127.0.0.1@%d" % self.responder_port) for z in sorted(self.responder_zones)]
        return out

    def tern_config(self, timeout=None, dnssec=True):
        """A `dns = { ... };` group for tern.conf sending every zone here."""
        lines = ["dns = {", "  mode = \"stub\";", "  stub = ("]
        stubs = self.stubs()
        for i, (zone, server) in enumerate(stubs):
            lines.append("    { zone = \"%s\"; servers = [ \"%s\" ]; }%s"
                         % (zone, server, "," if i + 1 < len(stubs) else ""))
        lines.append("  );")
        lines.append("  dnssec = %s;" % ("true" if dnssec else "false"))
        if self.signed:
            lines.append("  trust_anchor_file = \"%s\";" % self.anchor_file)
        if timeout is not None:
            lines.append("  timeout = %d;" % timeout)
        lines.append("};")
        return "\n".join(lines) + "\n"
