"""One test per tests/integration/transcripts-imap/*.t, run against an IMAP
server of its own (file format: tests/harness/transcript.py).  This runner
adds the @port kinds imap and imaps (implicit TLS), and replaces @USER@ in
client lines with a user of the transcript's own (t-NAME@example.test,
password "pw-Secret-1"), so transcripts never share a mailbox."""
import glob
import os
import smtplib

import pytest

import tern as tern_harness
import transcript
from conftest import finish

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transcripts-imap")
FILES = sorted(glob.glob(os.path.join(DIR, "*.t")))
PASSWORD = "pw-Secret-1"


def user_of(path):
    return "t-%s@example.test" % os.path.splitext(os.path.basename(path))[0].replace("_", "-")


@pytest.fixture(scope="module")
def imap_server():
    srv = tern_harness.TernServer(name="imapt")
    srv.add_domain("example.test")
    srv.add_user("auth@example.test", PASSWORD)
    for f in FILES:
        srv.add_user(user_of(f), PASSWORD)
    srv.start()
    # two messages in every INBOX, delivered by SMTP
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
        for f in FILES:
            for i in (1, 2):
                s.sendmail("sender@remote.test", [user_of(f)],
                           b"From: sender@remote.test\r\nSubject: message %d\r\n\r\nbody %d\r\n"
                           % (i, i))
    yield srv
    finish(srv)


def run_imap(path, srv):
    return transcript.run_file(path, srv.port, srv, kinds={"imap": False, "imaps": True},
                               subst={"@USER@": user_of(path)})


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[:-2] for f in FILES])
def test_imap_transcript(imap_server, path):
    ok, msg = run_imap(path, imap_server)
    print(msg)
    assert ok, msg
