"""Transcript runner: play a .t file against a server, line by line.

File format (one directive per line; blank lines and lines starting with
'#' are ignored):

  @port smtp|submission|submissions   which listener (default smtp; put it
                                      first).  submissions means implicit TLS.
  C: text        send text + CRLF (text taken literally, UTF-8)
  C+ text        send text without CRLF
  C= text        send text with escapes, nothing added:
                   \\r \\n \\t \\0 \\\\ \\xHH
  S: glob        the next reply line must match glob ('*' = any run of
                 characters; nothing else is special)
  S~ regex       the next reply line must contain a match of regex (re.search)
  S? glob        optional line: consumed when the next line (if any arrives)
                 matches glob; otherwise left for the next directive
  DRAIN~ regex   consume every following reply line that matches regex
                 (at least one)
  R              read the next whole reply (multi-line) as "the current reply"
  S& glob        some line of the current reply has text (after "NNN-" or
                 "NNN ") matching glob
  S!& glob       no line of the current reply has text matching glob
  TLS            do the TLS handshake now (after reading the 220 to STARTTLS);
                 fails if the server sent bytes we have not read
  CLOSED         the server must close the connection (no more data) in time
  SILENT ms      the server must send nothing for ms milliseconds
  DELAY ms       sleep
  STORED addr escaped-text
                 the newest message in addr's INBOX ends with the unescaped
                 text (needs a TernServer)
  STORED-COUNT addr +N
                 addr's INBOX grew by N messages since the transcript started

Macros in C:, C+ and C= lines: {{N*text}} repeats text N times.

run_file() returns (ok, message); message is "transcript NAME: ok" or the
first mismatch with the file's line number, what was expected and what came.
"""
import os
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from smtpc import SmtpConn, ServerClosed, Reply  # noqa: E402

PORTS = {"smtp": 25, "submission": 587, "submissions": 465}


class Mismatch(Exception):
    pass


def unescape(text):
    out = bytearray()
    i = 0
    b = text.encode("utf-8")
    while i < len(b):
        c = b[i:i + 1]
        if c == b"\\" and i + 1 < len(b):
            n = b[i + 1:i + 2]
            if n == b"r":
                out += b"\r"
            elif n == b"n":
                out += b"\n"
            elif n == b"t":
                out += b"\t"
            elif n == b"0":
                out += b"\0"
            elif n == b"\\":
                out += b"\\"
            elif n == b"x":
                out.append(int(b[i + 2:i + 4], 16))
                i += 2
            else:
                raise ValueError("unknown escape \\%s" % n.decode())
            i += 2
        else:
            out += c
            i += 1
    return bytes(out)


def expand(text):
    return re.sub(r"\{\{(\d+)\*(.*?)\}\}", lambda m: m.group(2) * int(m.group(1)), text)


def glob_re(glob):
    return re.compile("^" + ".*".join(re.escape(p) for p in glob.split("*")) + "$", re.S)


def parse(path):
    """[(lineno, directive, argument)]"""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line.endswith("\r"):
                line = line[:-1]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.match(r"^(C:|C\+|C=|S:|S~|S\?|S&|S!&|DRAIN~|STORED-COUNT|STORED|@port|TLS|CLOSED|"
                         r"SILENT|DELAY|R)(?: (.*))?$", line)
            if not m:
                raise ValueError("%s:%d: cannot parse %r" % (path, n, line))
            out.append((n, m.group(1), m.group(2) if m.group(2) is not None else ""))
    return out


# Listener kinds a transcript may name with @port (the default is the
# first), and whether the connection starts with TLS.
SMTP_KINDS = {"smtp": False, "submission": False, "submissions": True}


def run_file(path, port_of, server=None, counts=None, kinds=None, subst=None):
    """Play path.  port_of(kind) gives the TCP port of a listener; server is
    an optional TernServer for STORED checks; counts the STORED-COUNT
    baselines (see baseline()); kinds the allowed @port kinds (SMTP_KINDS
    by default; the IMAP and POP3 runners pass theirs); subst replaces
    strings in client lines (e.g. {"@USER@": address})."""
    kinds = kinds or SMTP_KINDS
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        steps = parse(path)
    except (OSError, ValueError) as e:
        return False, "transcript %s: %s" % (name, e)
    kind = next(iter(kinds))
    for _, d, a in steps:
        if d == "@port":
            kind = a.strip()
    if kind not in kinds:
        return False, "transcript %s: unknown @port %r" % (name, kind)
    counts = counts if counts is not None else {}
    conn = None
    current = None
    try:
        conn = SmtpConn(port_of(kind), tls=kinds[kind])
        for n, d, a in steps:
            for k, v in (subst or {}).items():
                a = a.replace(k, v)
            where = "transcript %s: line %d (%s %s)" % (name, n, d, a[:80])
            try:
                current = _step(conn, d, a, current, server, counts)
            except Mismatch as e:
                return False, "%s: %s" % (where, e)
            except ServerClosed:
                return False, "%s: server closed the connection" % where
            except socket.timeout as e:
                return False, "%s: timeout: %s" % (where, e)
            except OSError as e:
                return False, "%s: %s: %s" % (where, type(e).__name__, e)
        return True, "transcript %s: ok" % name
    except OSError as e:
        return False, "transcript %s: cannot connect: %s" % (name, e)
    finally:
        if conn:
            conn.close()


def _line(conn):
    return conn.line().decode("utf-8", "replace")


def _step(conn, d, a, current, server, counts):
    if d == "@port":
        return current
    if d == "C:":
        conn.send(expand(a).encode("utf-8") + b"\r\n")
    elif d == "C+":
        conn.send(expand(a).encode("utf-8"))
    elif d == "C=":
        conn.send(unescape(expand(a)))
    elif d == "S:":
        got = _line(conn)
        if not glob_re(a).match(got):
            raise Mismatch("expected %r, got %r" % (a, got))
    elif d == "S~":
        got = _line(conn)
        if not re.search(a, got):
            raise Mismatch("expected /%s/, got %r" % (a, got))
    elif d == "S?":
        # wait for a line, but an EOF or a short silence means "absent"
        try:
            if b"\n" not in conn.buf:
                conn._fill(1.0)
        except (ServerClosed, socket.timeout, OSError):
            return current
        if b"\n" in conn.buf:
            i = conn.buf.index(b"\n")
            got = conn.buf[:i].rstrip(b"\r").decode("utf-8", "replace")
            if glob_re(a).match(got):
                conn.buf = conn.buf[i + 1:]
    elif d == "DRAIN~":
        got = _line(conn)
        if not re.search(a, got):
            raise Mismatch("expected at least one line /%s/, got %r" % (a, got))
        while True:
            try:
                if b"\n" not in conn.buf:
                    conn._fill(1.0)
            except (ServerClosed, socket.timeout, OSError):
                break
            if b"\n" not in conn.buf:
                continue
            i = conn.buf.index(b"\n")
            got = conn.buf[:i].rstrip(b"\r").decode("utf-8", "replace")
            if not re.search(a, got):
                break
            conn.buf = conn.buf[i + 1:]
    elif d == "R":
        return conn.reply()
    elif d in ("S&", "S!&"):
        if current is None:
            raise Mismatch("no current reply (use R first)")
        rx = glob_re(a)
        hit = any(rx.match(t) for t in current.texts)
        if d == "S&" and not hit:
            raise Mismatch("no line of %r matches %r" % (current.lines, a))
        if d == "S!&" and hit:
            raise Mismatch("a line of %r matches %r" % (current.lines, a))
    elif d == "TLS":
        if conn.buf:
            raise Mismatch("server sent %r before the TLS handshake" % conn.buf)
        conn.starttls()
    elif d == "CLOSED":
        closed, extra = conn.closed()
        if not closed:
            raise Mismatch("server did not close the connection (sent %r)" % extra[:200])
        if extra:
            raise Mismatch("server sent %r before closing" % extra[:200])
    elif d == "SILENT":
        ms = int(a)
        if conn.buf:
            raise Mismatch("unexpected %r" % conn.buf[:200])
        try:
            conn._fill(ms / 1000.0)
        except socket.timeout:
            return current
        except ServerClosed:
            raise Mismatch("server closed the connection")
        raise Mismatch("unexpected %r" % conn.buf[:200])
    elif d == "DELAY":
        time.sleep(int(a) / 1000.0)
    elif d in ("STORED", "STORED-COUNT"):
        if server is None:
            raise Mismatch("%s needs a TernServer" % d)
        addr, _, rest = a.partition(" ")
        if d == "STORED-COUNT":
            want = int(rest.strip().lstrip("+"))
            have = len(server.message_rows(addr)) - counts.get(addr, 0)
            if have != want:
                raise Mismatch("%s got %d new messages, expected %d" % (addr, have, want))
        else:
            msgs = server.messages(addr)
            if not msgs:
                raise Mismatch("no message stored for %s" % addr)
            tail = unescape(rest)
            if not msgs[-1].endswith(tail):
                raise Mismatch("newest message of %s ends %r, expected ...%r"
                               % (addr, msgs[-1][-len(tail) - 40:], tail))
    return current


def baseline(path, server):
    """Message counts of every STORED-COUNT address, before a run."""
    counts = {}
    if server is None:
        return counts
    for _, d, a in parse(path):
        if d == "STORED-COUNT":
            addr = a.split(" ")[0]
            counts[addr] = len(server.message_rows(addr))
    return counts


def run(path, server):
    """Run against a TernServer, with STORED-COUNT baselines."""
    return run_file(path, server.port, server, baseline(path, server))


if __name__ == "__main__":
    # python3 transcript.py PORT_OFFSET FILE... (against a running server,
    # without STORED checks)
    off = int(sys.argv[1])
    bad = 0
    for p in sys.argv[2:]:
        ok, msg = run_file(p, lambda k: PORTS[k] + off)
        print(msg)
        bad += not ok
    sys.exit(1 if bad else 0)
