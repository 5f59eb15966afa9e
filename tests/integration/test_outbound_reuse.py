"""Outbound session reuse end to end on loopback: a sending Tern delivers
through queue.routes to a small SMTP server written here, which records
every connection and command.

- several messages to two domains with the same next hop go over one
  connection (one greeting and EHLO, then one MAIL transaction after the
  other, RFC 5321 3.3), never more connections at once than
  queue.connections allows, and idle sessions close by themselves;
- the next hop dropping a cached session (closing it, or 421, when the
  MAIL of the next message arrives) costs nothing: the message goes on a
  fresh connection at once, never deferred (retry_min is ten minutes
  here, so a deferral would show)."""
import socket
import socketserver
import threading
import time

import pytest

import tern as tern_harness
from conftest import finish
from outbound import PASSWORD, queue_json, submit, wait_for


class Sink(socketserver.ThreadingTCPServer):
    """SMTP on 127.0.0.1: accepts every message.  on_reuse, for a second
    MAIL on a connection: "ok", "close" (drop the connection without a
    reply) or "421"."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, on_reuse="ok"):
        super().__init__(("127.0.0.1", 0), SinkHandler)
        self.on_reuse = on_reuse
        self.lock = threading.Lock()
        self.conns = []          # per connection: the commands, in order
        self.messages = 0
        self.open = 0
        self.max_open = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class SinkHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        srv = self.server
        cmds = []
        with srv.lock:
            srv.conns.append(cmds)
            srv.open += 1
            srv.max_open = max(srv.max_open, srv.open)
        try:
            self.session(srv, cmds)
        except OSError:
            pass
        finally:
            with srv.lock:
                srv.open -= 1

    def session(self, srv, cmds):
        self.reply("220 sink.test ESMTP")
        for _ in range(10000):
            line = self.rfile.readline(4096)
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
            with srv.lock:
                cmds.append(verb)
            if verb == "EHLO":
                self.reply("250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000")
            elif verb == "MAIL" and cmds.count("MAIL") > 1 and srv.on_reuse == "close":
                self.request.shutdown(socket.SHUT_RDWR)
                return
            elif verb == "MAIL" and cmds.count("MAIL") > 1 and srv.on_reuse == "421":
                self.reply("421 4.4.2 sink.test closing idle session")
                return
            elif verb == "DATA":
                self.reply("354 go on")
                for _ in range(100000):
                    data = self.rfile.readline(65536)
                    if not data or data == b".\r\n":
                        break
                with srv.lock:
                    srv.messages += 1
                self.reply("250 2.0.0 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


def sending_tern(sink, connections):
    s = tern_harness.TernServer(name="reuse")
    s.add_domain("a.test")
    s.add_user("alice@a.test", PASSWORD)
    with open(s.conf, "a") as f:
        f.write("\nqueue = {\n  scan_interval = 1;\n  retry_min = 600;\n  retry_max = 600;\n"
                "  connections = %d;\n  routes = (\n"
                "    { domain = \"r1.test\"; host = \"127.0.0.1\"; port = %d; },\n"
                "    { domain = \"r2.test\"; host = \"127.0.0.1\"; port = %d; } );\n};\n"
                % (connections, sink.port, sink.port))
    s.start()
    return s


@pytest.fixture
def sink_ok():
    s = Sink("ok")
    yield s
    s.stop()


def test_messages_share_a_session(sink_ok):
    t = sending_tern(sink_ok, 1)
    try:
        for i in range(6):
            submit(t, ["u%d@r%d.test" % (i, 1 + i % 2)], "reuse %d" % i)
        assert wait_for(lambda: sink_ok.messages == 6), (sink_ok.conns, t.log_tail())
        assert wait_for(lambda: queue_json(t) == [])
        with sink_ok.lock:
            conns = [list(c) for c in sink_ok.conns]
        # fewer connections than messages; one carried several after a
        # single EHLO
        assert len(conns) < 6, conns
        busiest = max(conns, key=lambda c: c.count("DATA"))
        assert busiest.count("DATA") >= 2, conns
        assert busiest.count("MAIL") == busiest.count("DATA"), busiest
        assert busiest.count("EHLO") == 1, busiest
        assert sink_ok.max_open <= 1
        assert "event=reuse " in t.log()
        # idle sessions close by themselves (QUEUE_IDLE_SECONDS)
        assert wait_for(lambda: sink_ok.open == 0, timeout=10), sink_ok.open
    finally:
        finish(t)


@pytest.mark.parametrize("how", ["close", "421"])
def test_dropped_session_retried_at_once(how):
    sink = Sink(how)
    t = sending_tern(sink, 1)
    try:
        for i in range(4):
            submit(t, ["u%d@r1.test" % i], "dropped %d" % i)
        assert wait_for(lambda: sink.messages == 4, timeout=15), (sink.conns, t.log_tail())
        assert wait_for(lambda: queue_json(t) == []), queue_json(t)
        log = t.log()
        assert "event=deferred" not in log
        # each cached session was dropped at its second MAIL, then a fresh
        # one carried the message
        assert "event=reuse_failed" in log, log
        assert log.count("event=connect qid") >= 4, log
    finally:
        finish(t)
        sink.stop()
