"""ARC (RFC 8617) verification of Tern's library against mail-auth's ARC
vectors and against chains sealed by dkimpy (Debian's python3-dkim,
dkim.arc_sign), through the driver mode of build/tests/test-arc.

Vectors (../shared/testdata/dkim/mail-auth/arc/): 001 (Google, one set)
and 002 (two sets, the first sealed with ed25519-sha256) both pass.  On 002
dkimpy 1.1.4 says fail ("unknown signature algorithm: ed25519-sha256"): its
ARC code knows only rsa-sha256; Tern accepts in ARC the algorithms it
accepts in DKIM (docs/arc.md).

Cross-check: chains of one to three sets sealed by dkimpy with RSA-2048
keys made here pass in Tern with the right sealer and oldest-pass 0, and
dkimpy agrees; a body changed after sealing, a changed ARC header and a
missing key fail in both.

Sealing: messages Tern seals (tests/unit/test-arc.c's --seal driver over
src/mailauth/arc-seal.c), alone and above a dkimpy set, pass
dkim.arc_verify.

Run directly (/usr/bin/python3 tests/integration/test_arc.py) for the
summary line "arc: N passed, N failed".
"""
import base64
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(os.environ.get("TERN_SHARED_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata")),
                    "dkim", "mail-auth", "arc")


def driver_path():
    tern = os.environ.get("TERN_BIN")
    if tern:
        path = os.path.join(os.path.dirname(tern), "tests", "test-arc")
        if os.path.exists(path):
            return path
    return os.path.join(ROOT, "build", "tests", "test-arc")


def tern_verify(records, msg):
    """Tern's verdict: (result, oldest-pass, sealer, reason)."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        head = "".join("%s %s\n" % (k, v) for k, v in records.items())
        f.write(head.encode() + b"\n" + msg)
        f.flush()
        out = subprocess.run([driver_path(), "--verify", f.name], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res, oldest, sealer, reason = out.stdout.decode().rstrip("\n").split("\t")
    return res, int(oldest), sealer, reason


def vector(name):
    text = open(os.path.join(DATA, name), "rb").read().decode()
    head, _, msg = text.partition("\n\n")
    records = {}
    for line in head.splitlines():
        owner, _, value = line.partition(" ")
        records[owner] = value
    return records, msg.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def test_vector_001():
    records, msg = vector("001.txt")
    assert tern_verify(records, msg)[:3] == ("pass", 0, "google.com")


def test_vector_002():
    records, msg = vector("002.txt")
    assert tern_verify(records, msg)[:3] == ("pass", 0, "manchego.org")
    bad = msg.replace(b"tastier.", b"tastier!")
    res = tern_verify(records, bad)
    assert res[0] == "fail" and "body hash" in res[3], res


SAMPLE = (b"From: Joe SixPack <joe@football.example.com>\r\n"
          b"To: Suzie Q <suzie@shopping.example.net>\r\n"
          b"Subject: Is dinner  ready?\r\n"
          b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
          b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
          b"\r\n"
          b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet? \t\r\n\r\nJoe.\r\n\r\n")


class Sealers:
    """RSA-2048 keys made with openssl for a few sealing domains."""

    def __init__(self, domains):
        self.dir = tempfile.TemporaryDirectory()
        self.keys = {}
        self.records = {}
        for d in domains:
            pem = os.path.join(self.dir.name, d + ".pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                            "-out", pem], check=True, capture_output=True)
            pub = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                                 check=True, capture_output=True).stdout
            self.keys[d] = open(pem, "rb").read()
            self.records["arc._domainkey." + d] = "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()

    def dnsfunc(self, name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return self.records.get(name.rstrip("."), "").encode()

    def seal(self, msg, domain, cv):
        import dkim
        ar = b"Authentication-Results: " + domain.encode() + b"; arc=" + cv.encode() + b"\r\n"
        msg = ar + msg
        sig = dkim.arc_sign(msg, b"arc", domain.encode(), self.keys[domain], domain.encode())
        return b"".join(sig) + msg


DOMAINS = ["lists.example.org", "fwd.example.net", "relay.example.com"]


@pytest.fixture(scope="module")
def sealers():
    pytest.importorskip("dkim")
    return Sealers(DOMAINS)


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_dkimpy_chain_passes(sealers, hops):
    import dkim
    msg = SAMPLE
    for i in range(hops):
        msg = sealers.seal(msg, DOMAINS[i], "none" if i == 0 else "pass")
    assert dkim.arc_verify(msg, dnsfunc=sealers.dnsfunc)[0] == b"pass"
    res = tern_verify(sealers.records, msg)
    assert res == ("pass", 0, DOMAINS[hops - 1], ""), res


def test_dkimpy_chain_tampered(sealers):
    import dkim
    msg = sealers.seal(sealers.seal(SAMPLE, DOMAINS[0], "none"), DOMAINS[1], "pass")
    # the body changed after the last seal
    bad = msg.replace(b"hungry yet?", b"hungry now?")
    assert dkim.arc_verify(bad, dnsfunc=sealers.dnsfunc)[0] == b"fail"
    res = tern_verify(sealers.records, bad)
    assert res[0] == "fail" and "body hash" in res[3], res
    # the oldest ARC-Authentication-Results rewritten: only the seals see it
    bad = msg.replace(b"i=1; lists.example.org; arc=none", b"i=1; lists.example.org; arc=pass")
    assert bad != msg
    assert dkim.arc_verify(bad, dnsfunc=sealers.dnsfunc)[0] == b"fail"
    res = tern_verify(sealers.records, bad)
    assert res[0] == "fail" and "ARC-Seal" in res[3], res
    # the first sealer's key withdrawn
    records = dict(sealers.records)
    del records["arc._domainkey." + DOMAINS[0]]
    res = tern_verify(records, msg)
    assert res[0] == "fail" and "i=1" in res[3], res


def tern_seal(sealers, msg, domain, ar):
    """Tern's arc-seal.c through the driver; the sealed message."""
    with tempfile.TemporaryDirectory() as d:
        mf = os.path.join(d, "msg")
        kf = os.path.join(d, "key.pem")
        open(mf, "wb").write(msg)
        open(kf, "wb").write(sealers.keys[domain])
        out = subprocess.run([driver_path(), "--seal", mf, "--domain", domain, "--selector", "arc",
                              "--key", kf, "--ar", ar], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_dkimpy_verifies_tern_seals(sealers):
    import dkim
    # Tern seals first (i=1, cv=none)
    one = tern_seal(sealers, SAMPLE, DOMAINS[0], "mx.lists.example.org;\r\n\tspf=pass smtp.mailfrom=x")
    assert one.startswith(b"ARC-Seal: i=1;")
    res = dkim.arc_verify(one, dnsfunc=sealers.dnsfunc)
    assert res[0] == b"pass", res
    # dkimpy seals on top (i=2), then Tern again (i=3)
    two = sealers.seal(one, DOMAINS[1], "pass")
    three = tern_seal(sealers, two, DOMAINS[2], "mx.relay.example.com; arc=pass")
    assert three.startswith(b"ARC-Seal: i=3;")
    res = dkim.arc_verify(three, dnsfunc=sealers.dnsfunc)
    assert res[0] == b"pass", res
    assert tern_verify(sealers.records, three) == ("pass", 0, DOMAINS[2], "")
    # and dkimpy notices a change
    assert dkim.arc_verify(three.replace(b"hungry yet?", b"hungry now?"),
                           dnsfunc=sealers.dnsfunc)[0] == b"fail"


def test_no_chain(sealers):
    assert tern_verify(sealers.records, SAMPLE)[0] == "none"


if __name__ == "__main__":
    sys.exit(pytest.main(["-q", __file__]))
