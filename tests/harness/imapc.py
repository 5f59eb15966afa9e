"""A small raw IMAP client for tests that need exact bytes: implicit TLS
(self-signed certificates accepted), LOGIN at connect, tagged commands
"t1", "t2", ... (self.n is the last number), responses as bytes with their
literals inline (the literal header's CRLF kept), every read bounded by
the socket timeout."""
import re
import socket
import ssl

import tern as tern_harness


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ImapClient:
    def __init__(self, port, user, password):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10 * tern_harness.SCALE)
        self.s = tls_ctx().wrap_socket(sock)
        self.buf = b""
        self.n = 0
        assert self.response().startswith(b"* OK")
        assert self.ok("LOGIN %s %s" % (user, password))

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def _bytes(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """One response line with its literals inline."""
        out = b""
        while True:
            ln = self._line()
            out += ln
            m = re.search(rb"~?\{(\d+)\}$", ln)
            if not m:
                return out
            out += b"\r\n" + self._bytes(int(m.group(1)))

    def cmd(self, text):
        """Send a tagged command: (untagged responses, tagged line as str
        without the tag)."""
        self.n += 1
        tag = "t%d" % self.n
        self.s.sendall(("%s %s\r\n" % (tag, text)).encode())
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag.encode() + b" "):
                return untagged, r[len(tag) + 1:].decode()
            untagged.append(r)

    def ok(self, text):
        return self.cmd(text)[1].startswith("OK")

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, EOFError):
            pass
        self.s.close()
