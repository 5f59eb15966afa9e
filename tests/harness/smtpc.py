"""A small raw SMTP client for tests: exact bytes on the wire, no smtplib.

Every read is bounded by a timeout (scaled up under sanitizers), so a
server that does not answer makes a test fail instead of hanging.  Only
loopback addresses are ever used by the tests.
"""
import os
import socket
import ssl
import time

SANITIZED = bool(os.environ.get("TERN_SANITIZED"))
# One read waits at most this long; sanitized builds are several times slower.
READ_TIMEOUT = 15.0 if SANITIZED else 5.0


def client_tls_context():
    """TLS context that accepts the server's self-signed test certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ServerClosed(Exception):
    """The server closed the connection while we expected data."""


class Reply:
    """One SMTP reply: code and the text of each line (without "NNN-")."""

    def __init__(self, lines):
        self.lines = lines                      # raw lines without CRLF (str)
        self.code = int(lines[-1][:3]) if lines and lines[-1][:3].isdigit() else 0
        self.texts = [l[4:] for l in lines]

    @property
    def text(self):
        return "\n".join(self.texts)

    def has(self, keyword):
        """Does some line's text start with keyword (case-insensitive word)?"""
        kw = keyword.upper()
        for t in self.texts:
            u = t.upper()
            if u == kw or u.startswith(kw + " "):
                return True
        return False

    def __repr__(self):
        return "Reply(%r)" % (self.lines,)


class SmtpConn:
    """A raw SMTP connection: send bytes, read reply lines and replies."""

    def __init__(self, port, host="127.0.0.1", tls=False, source=None, timeout=None,
                 read_greeting=False):
        self.timeout = timeout or READ_TIMEOUT
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        self.sock = s
        self.buf = b""
        self.tls = False
        if tls:
            self._wrap()
        if read_greeting:
            self.greeting = self.reply()

    def _wrap(self):
        self.sock = client_tls_context().wrap_socket(self.sock, server_hostname="mail.example.test")
        self.tls = True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        """Read more bytes into the buffer; raise ServerClosed at EOF."""
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        except ssl.SSLError as e:
            if "EOF" in str(e) or "UNEXPECTED" in str(e):
                data = b""
            else:
                raise
        if not data:
            raise ServerClosed("server closed the connection")
        self.buf += data

    def line(self, timeout=None):
        """Next reply line as bytes without CRLF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete reply line within %.1fs (have %r)"
                                     % (timeout or self.timeout, self.buf[:200]))
            self._fill(left)
        i = self.buf.index(b"\n")
        ln, self.buf = self.buf[:i], self.buf[i + 1:]
        if ln.endswith(b"\r"):
            ln = ln[:-1]
        return ln

    def reply(self, timeout=None):
        """Read one complete (possibly multi-line) reply."""
        lines = []
        while True:
            ln = self.line(timeout).decode("utf-8", "replace")
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return Reply(lines)

    def cmd(self, line, timeout=None):
        """Send line + CRLF and return the reply."""
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def expect(self, line, code, timeout=None):
        r = self.cmd(line, timeout) if line is not None else self.reply(timeout)
        if r.code != code:
            raise AssertionError("%r: expected %d, got %r" % (line, code, r.lines))
        return r

    def starttls(self):
        """Handshake now (after the 220 to STARTTLS was read).  Bytes the
        server sent before the handshake but that we have not read are an
        error: a server must not answer pipelined plaintext commands."""
        if self.buf:
            raise AssertionError("unread plaintext before TLS handshake: %r" % self.buf)
        self.sock.settimeout(self.timeout)
        self._wrap()

    def closed(self, timeout=None):
        """True when the server closes the connection within timeout, with
        no further data.  Returns (closed, extra_bytes)."""
        extra = self.buf
        self.buf = b""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            try:
                self._fill(max(0.05, deadline - time.monotonic()))
            except ServerClosed:
                return True, extra
            except socket.timeout:
                break
            except OSError:
                return True, extra
            extra += self.buf
            self.buf = b""
        return False, extra

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def send_message(port, sender, rcpts, message, ehlo="client.test", tls=False, starttls=False,
                 auth=None, source=None):
    """Send one message in the simplest way; return the reply to the end of
    data (a Reply), raising AssertionError when an earlier step fails.
    auth is (user, password) for AUTH PLAIN."""
    import base64
    with SmtpConn(port, tls=tls, source=source) as c:
        c.expect(None, 220)
        c.expect("EHLO " + ehlo, 250)
        if starttls:
            c.expect("STARTTLS", 220)
            c.starttls()
            c.expect("EHLO " + ehlo, 250)
        if auth:
            tok = base64.b64encode(("\0%s\0%s" % auth).encode()).decode()
            c.expect("AUTH PLAIN " + tok, 235)
        c.expect("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            c.expect("RCPT TO:<%s>" % r, 250)
        c.expect("DATA", 354)
        if isinstance(message, str):
            message = message.encode("utf-8")
        c.send(dot_stuff(message) + b".\r\n")
        r = c.reply()
        try:
            c.cmd("QUIT")
        except (OSError, ServerClosed):
            pass
        return r


def dot_stuff(message):
    """CRLF-terminated, dot-stuffed DATA payload (without the final dot)."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    lines = message.split(b"\r\n")
    out = [b"." + l if l.startswith(b".") else l for l in lines]
    return b"\r\n".join(out)
