"""A failed write never becomes a 250, and loses nothing.

The store's fault hook (TERN_STORE_FAULT="N:ERRNO", see store.h) makes the
Nth write, fsync or syncfs of the worker's commit thread fail.  The client
must get a temporary error (451 4.3.0), nothing may be visible in the
mailbox or left on disk for that message, and the next message must be
stored normally."""
import os
import uuid

import pytest

from smtpc import send_message


def _files(srv):
    root = os.path.join(srv.dir, "data", "messages")
    return sum(len(f) for _, _, f in os.walk(root))


@pytest.mark.parametrize("fault", ["1:ENOSPC", "2:EIO"])
def test_failed_write_is_never_acknowledged(tern_factory, fault):
    srv = tern_factory(name="fault", start=False)
    srv.start(env={"TERN_STORE_FAULT": fault})
    port = srv.port("smtp")
    tag = uuid.uuid4().hex
    msg = "Subject: %s\r\n\r\nfirst\r\n" % tag
    r = send_message(port, "x@remote.test", ["a@example.test"], msg)
    assert r.code == 451 and r.text.startswith("4.3.0"), r
    assert not [m for m in srv.messages("a@example.test") if tag.encode() in m]
    assert _files(srv) == 0
    assert "event=store_failed" in srv.log()

    # the next one is stored, whole
    msg2 = "Subject: %s-2\r\n\r\nsecond\r\n" % tag
    r = send_message(port, "x@remote.test", ["a@example.test"], msg2)
    assert r.code == 250, r
    got = [m for m in srv.messages("a@example.test") if (tag + "-2").encode() in m]
    assert len(got) == 1 and got[0].endswith(b"\r\n\r\nsecond\r\n")
    assert _files(srv) == 1
    out = srv.tern("store", "verify")
    assert out.returncode == 0, out.stdout + out.stderr
