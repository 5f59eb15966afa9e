"""Large pipelined input over TLS: every command is answered, in order.

libevent's read watermark on a TLS filter bufferevent once reordered the
input of a session that had a few hundred KiB pipelined behind a command
waiting on a commit (lib/conn.c: conn_flow_control).  These send that much
in one go — SMTP after STARTTLS, IMAP APPENDs with LITERAL+ over 993 — while
a thread reads the replies, and check every reply."""
import selectors
import socket
import ssl
import time

import tern as th
from imapc import tls_ctx



def pump(sock, blob, want_lines, timeout):
    """Send blob while reading, in one thread with a non-blocking socket
    (one SSL object must not be used by two threads at once); return the
    reply lines once want_lines have arrived (or the time is up)."""
    got = bytearray()
    off = 0
    view = memoryview(blob)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    deadline = time.monotonic() + timeout
    try:
        while got.count(b"\r\n") < want_lines and time.monotonic() < deadline:
            events = sel.select(0.2)
            if sock.pending() or any(ev & selectors.EVENT_READ for _, ev in events):
                try:
                    d = sock.recv(65536)
                    if not d:
                        break
                    got.extend(d)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
            if off < len(blob) and any(ev & selectors.EVENT_WRITE for _, ev in events):
                try:
                    off += sock.send(view[off:off + 16384])
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
                if off >= len(blob):
                    sel.modify(sock, selectors.EVENT_READ)
    finally:
        sel.close()
    return bytes(got).split(b"\r\n")[:-1]


def test_smtp_pipelined_after_starttls(shared):
    n = 100 if th.SANITIZED else 300
    raw = socket.create_connection(("127.0.0.1", shared.port("smtp")), timeout=30)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220")
    raw.sendall(b"EHLO client.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    raw.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220")
    s = tls_ctx().wrap_socket(raw)
    s.settimeout(60)
    body = b"Subject: pipelined\r\n\r\n" + (b"y" * 70 + b"\r\n") * 30
    one = (b"MAIL FROM:<p@remote.test>\r\nRCPT TO:<a@example.test>\r\nDATA\r\n" +
           body + b".\r\n")
    blob = b"EHLO client.test\r\n" + one * n + b"QUIT\r\n"
    assert len(blob) > 512 * 1024 or th.SANITIZED
    lines = pump(s, blob, 9 + 4 * n + 1, 60 * th.SCALE)
    codes = [ln[:3] for ln in lines if ln[3:4] == b" "]
    # EHLO, then 250 250 354 250 per message, then 221
    assert codes[0] == b"250"
    assert codes[1:1 + 4 * n] == [b"250", b"250", b"354", b"250"] * n, codes[:20]
    assert codes[-1] == b"221"


def test_imap_pipelined_appends_over_tls(shared):
    n = 150 if th.SANITIZED else 600
    s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", shared.port("imaps")),
                                                       timeout=30))
    s.settimeout(60)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b'l LOGIN "b@example.test" "bravo-Secret-2"\r\n')
    while True:
        ln = f.readline()
        if ln.startswith(b"l "):
            assert ln.startswith(b"l OK"), ln
            break
    msg = b"Subject: append\r\n\r\n" + (b"z" * 70 + b"\r\n") * 12
    blob = b"".join(b"a%d APPEND Archive {%d+}\r\n%s\r\n" % (i, len(msg), msg)
                    for i in range(n)) + b"z LOGOUT\r\n"
    assert len(blob) > 512 * 1024 or th.SANITIZED
    t0 = time.monotonic()
    lines = pump(s, blob, n + 2, 60 * th.SCALE)
    tagged = [ln.split(b" ", 2)[:2] for ln in lines if not ln.startswith(b"*")]
    assert tagged[:n] == [[b"a%d" % i, b"OK"] for i in range(n)], (tagged[:5], len(tagged))
    assert tagged[n] == [b"z", b"OK"]
    assert time.monotonic() - t0 < 60 * th.SCALE


def test_imap_large_fetch_over_tls(shared):
    """A FETCH reply of several MiB over TLS arrives whole (the reply pauses
    on pending output and must be woken as the TLS layer drains)."""
    import imaplib
    n = 100 if th.SANITIZED else 400
    body = b"Subject: big\r\n\r\n" + (b"q" * 98 + b"\r\n") * 100    # ~10 KiB
    # fill the mailbox in one pipelined burst
    s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", shared.port("imaps")),
                                                       timeout=30))
    blob = (b'l LOGIN "c@example.test" "charlie-Secret-3"\r\nc CREATE Big\r\n' +
            b"".join(b"a%d APPEND Big {%d+}\r\n%s\r\n" % (i, len(body), body)
                     for i in range(n)) + b"z LOGOUT\r\n")
    lines = pump(s, blob, n + 5, 60 * th.SCALE)
    s.close()
    assert sum(1 for ln in lines if ln.startswith(b"a") and b" OK " in ln) == n
    m = imaplib.IMAP4_SSL("127.0.0.1", shared.port("imaps"), ssl_context=tls_ctx())
    try:
        m.login("c@example.test", "charlie-Secret-3")
        assert m.select("Big")[0] == "OK"
        t0 = time.monotonic()
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK"
        parts = [d[1] for d in data if isinstance(d, tuple)]
        assert len(parts) == n and all(p == body for p in parts)
        assert time.monotonic() - t0 < 30 * th.SCALE
    finally:
        m.logout()
