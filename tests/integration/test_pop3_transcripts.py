"""One test per tests/integration/transcripts-pop3/*.t, run against a POP3
server of its own (the file format is tests/harness/transcript.py's; this
runner adds the @port kinds pop3 and pop3s, pop3s being implicit TLS)."""
import glob
import os
import smtplib

import pytest

import tern as tern_harness
import transcript
from conftest import finish

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transcripts-pop3")
FILES = sorted(glob.glob(os.path.join(DIR, "*.t")))
USER, PASSWORD = "pt@example.test", "pt-Secret-1"
MESSAGES = [
    b"From: sender@remote.test\r\nTo: pt@example.test\r\nSubject: one\r\n\r\nfirst\r\n",
    b"From: sender@remote.test\r\nTo: pt@example.test\r\nSubject: two\r\n\r\n"
    b".leading dot\r\n..\r\nlast line\r\n",
]


@pytest.fixture(scope="module")
def pop3_server():
    srv = tern_harness.TernServer(name="pop3t")
    srv.add_domain("example.test")
    srv.add_user(USER, PASSWORD)
    srv.start()
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
        for m in MESSAGES:
            s.sendmail("sender@remote.test", [USER], m)
    yield srv
    finish(srv)


def run_pop3(path, srv):
    return transcript.run_file(path, srv.port, srv, kinds={"pop3": False, "pop3s": True})


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[:-2] for f in FILES])
def test_pop3_transcript(pop3_server, path):
    ok, msg = run_pop3(path, pop3_server)
    print(msg)
    assert ok, msg
