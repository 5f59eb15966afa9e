"""Helpers for the outbound delivery tests (tests/integration/test_delivery*.py,
test_smarthost.py, test_mta_sts.py, test_forwarding.py): hand a message to
a sending Tern, look for it at the receiving one, read the sender's queue.

- submit(): implicit-TLS submission (465) with AUTH as the envelope sender
  of compose()'s message, which carries "Subject: S", "Message-ID: <S-with-dashes@a.test>"
  and the body line "body of S", which find() then looks for;
- smtp_send(): a plain port-25 transaction (no SIZE, so a quota is checked
  at end of data), returning the RCPT and DATA replies; message() builds
  what it sends;
- queue_json() / deferred(): `tern queue list --json`, and the recipients
  in state deferred (waiting for one, bounded);
- spki_sha256(): the TLSA 3 1 1 value of a certificate file;
- SevenBitPeer: a minimal SMTP peer without 8BITMIME, keeping what it gets.

Every network call has a timeout; every wait is bounded (tern.wait_for)."""
import hashlib
import json
import smtplib
import socket
import subprocess
import threading

import tern as tern_harness
from imapc import tls_ctx

PASSWORD = "dl-Secret-1"          # the sending users' password in these tests

wait_for = tern_harness.wait_for


def compose(rcpts, subject, sender="alice@a.test"):
    """The bytes submit() sends."""
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\n\r\n"
            "body of %s\r\n" % (sender, ", ".join(rcpts), subject, subject.replace(" ", "-"),
                                  subject)).encode()


def submit(srv, rcpts, subject, sender="alice@a.test", password=PASSWORD):
    """Submit compose(rcpts, subject, sender) to rcpts over srv's port 465;
    asserts that every recipient was accepted."""
    with smtplib.SMTP_SSL(srv.host, srv.port("submissions"), context=tls_ctx(),
                          timeout=30) as c:
        c.login(sender, password)
        refused = c.sendmail(sender, rcpts, compose(rcpts, subject, sender))
    assert refused == {}


def find(srv, address, marker, mailbox="INBOX"):
    """The first stored message in address's mailbox holding marker, or None."""
    found = tern_harness.find_stored(srv, address, marker, mailbox)
    return found[0] if found else None


def queue_json(srv, *args):
    """`tern queue list --json ARGS` of srv, parsed."""
    p = srv.tern("queue", "list", "--json", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def deferred(srv, rcpt, timeout=30):
    """The queue records (dicts) of recipient rcpt in state deferred,
    waiting up to timeout seconds for one; [] if none came."""
    def look():
        return [r for m in queue_json(srv) for r in m["recipients"]
                if r["address"] == rcpt and r["state"] == "deferred"]
    return wait_for(look, timeout)


def smtp_send(srv, sender, rcpts, body):
    """One transaction on srv's port 25 without SIZE (so quota is checked
    at end of data).  Returns the RCPT replies and the DATA reply (None
    when no recipient was accepted)."""
    with smtplib.SMTP(srv.host, srv.port("smtp"), timeout=30) as c:
        c.ehlo("client.test")
        code, text = c.mail(sender)
        assert code == 250, (code, text)
        rcpt = [c.rcpt(r) for r in rcpts]
        if not any(code == 250 for code, _ in rcpt):
            return rcpt, None
        return rcpt, c.data(body.encode())


def message(subject, frm="orig@origin.test", to="list@a.test", pad=0):
    """A message for smtp_send: headers, "body of SUBJECT" and pad lines of
    70 characters."""
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@origin.test>\r\n\r\n"
            "body of %s\r\n%s" % (frm, to, subject, subject.replace(" ", "-"), subject,
                                  ("x" * 70 + "\r\n") * pad))


def spki_sha256(cert_path):
    """SHA-256 of the certificate's SubjectPublicKeyInfo, hex (TLSA 3 1 1)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


class SevenBitPeer:
    """An SMTP server on 127.0.0.1 that offers no 8BITMIME (RFC 6152):
    Tern must convert 8-bit mail for it.  Keeps every message it gets
    (dot-unstuffed) in .messages; close() stops it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.session(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def session(self, conn):
        conn.settimeout(10)
        f = conn.makefile("rb")
        conn.sendall(b"220 seven.test ESMTP\r\n")
        for _ in range(100):
            line = f.readline(2000)
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                conn.sendall(b"250-seven.test\r\n250 PIPELINING\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go on\r\n")
                lines = []
                for _ in range(200000):
                    ln = f.readline(10000)
                    if not ln or ln == b".\r\n":
                        break
                    lines.append(ln[1:] if ln.startswith(b".") else ln)
                self.messages.append(b"".join(lines))
                conn.sendall(b"250 kept\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP", b"HELO"):
                conn.sendall(b"250 ok\r\n")
            else:
                conn.sendall(b"502 not here\r\n")

    def close(self):
        self.stop = True
        self.sock.close()
        self.thread.join(5)
