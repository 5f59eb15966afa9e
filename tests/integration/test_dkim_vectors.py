"""DKIM test vectors (../shared/testdata/dkim/, see its README.md) and a
cross-check with dkimpy (Debian's python3-dkim), run against Tern's DKIM
library through the driver modes of build/tests/test-dkim.

Vectors: every signed message verifies with its DNS records, once with all
DNS answers given at once and the message fed whole, once with deferred
answers and the message fed one byte at a time; the unsigned messages
round-trip (Tern signs, Tern verifies); the message without From is
refused; the broken key records of dkimpy's tests give permerror.

Cross-check: keys generated here with openssl (RSA-2048 and Ed25519);
messages Tern signs verify with dkim.verify(..., dnsfunc=...), and messages
dkimpy signs (every canonicalisation) verify in Tern; dkimpy's l= signatures
give policy when text is appended.

Run directly (/usr/bin/python3 tests/integration/test_dkim_vectors.py) for
the summary line "dkim: N passed, N failed".  Of mail-auth's ARC vectors
only the DKIM signatures are checked here; their ARC chains are verified
by tests/integration/test_arc.py (docs/arc.md).
"""
import base64
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(os.environ.get("TERN_SHARED_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata")),
                    "dkim")
DKIMPY = os.path.join(DATA, "dkimpy")
MAILAUTH = os.path.join(DATA, "mail-auth", "dkim")


def driver_path():
    tern = os.environ.get("TERN_BIN")
    if tern:
        path = os.path.join(os.path.dirname(tern), "tests", "test-dkim")
        if os.path.exists(path):
            return path
    return os.path.join(ROOT, "build", "tests", "test-dkim")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def dkimpy_records():
    """dns-records.txt with @file values resolved: {owner: value}."""
    recs = {}
    for line in read(os.path.join(DKIMPY, "dns-records.txt")).decode().splitlines():
        if not line or line.startswith("#"):
            continue
        owner, _, value = line.partition(" ")
        if value.startswith("@"):
            value = read(os.path.join(DKIMPY, value[1:])).decode().strip()
        recs[owner] = value
    return recs


class Work:
    """A temporary folder for one case's files."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tern-dkim-")

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def close(self):
        subprocess.run(["rm", "-rf", self.dir], check=False)


def tern_verify(work, msg, records, now=None, extra=()):
    """Verify msg (bytes) with records {owner: value}, both ways; return
    the list of (result, d, s, a, reason), or raise when the two ways
    disagree."""
    mpath = work.file("msg", msg)
    dpath = work.file("dns", "".join("%s %s\n" % kv for kv in records.items()))
    outs = []
    for mode in ([], ["--async", "--chunk", "1"]):
        args = [driver_path(), "--verify", mpath, "--dns", dpath] + mode + list(extra)
        if now:
            args += ["--now", str(now)]
        out = subprocess.run(args, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        outs.append([tuple(line.split("\t")) for line in out.stdout.decode().splitlines()])
    assert outs[0] == outs[1], "whole/sync %r != byte-by-byte/async %r" % (outs[0], outs[1])
    return outs[0]


def tern_sign(work, msg, domain, selector, key=None, seed=None, now=None):
    """Tern's signed message (bytes), or None when signing was refused."""
    mpath = work.file("tosign", msg)
    args = [driver_path(), "--sign", mpath, "--domain", domain, "--selector", selector]
    args += ["--key", key] if key else ["--seed", seed]
    if now:
        args += ["--now", str(now)]
    out = subprocess.run(args, capture_output=True, timeout=60)
    if out.returncode == 2:
        return None
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout


def results(res):
    return [r[0] for r in res]


# ---- the vectors ----

def case_dkimpy_signed():
    w = Work()
    try:
        res = tern_verify(w, read(os.path.join(DKIMPY, "rfc6376.signed.msg")), dkimpy_records())
        assert results(res) == ["pass", "pass"], res
        assert [r[3] for r in res] == ["ed25519-sha256", "rsa-sha256"], res
    finally:
        w.close()


def case_dkimpy_exim():
    w = Work()
    try:
        res = tern_verify(w, read(os.path.join(DKIMPY, "ed25519test2.msg")), dkimpy_records())
        assert results(res) == ["pass"], res
    finally:
        w.close()


def case_dkimpy_gmail():
    w = Work()
    try:
        res = tern_verify(w, read(os.path.join(DKIMPY, "test2.message")), dkimpy_records())
        assert results(res) == ["pass"], res
    finally:
        w.close()


def round_trip(msgfile, domain, selector, keyfile=None, seedfile=None):
    w = Work()
    try:
        seed = read(os.path.join(DKIMPY, seedfile)).decode().strip() if seedfile else None
        key = os.path.join(DKIMPY, keyfile) if keyfile else None
        signed = tern_sign(w, read(os.path.join(DKIMPY, msgfile)), domain, selector, key, seed)
        assert signed is not None, "signing refused"
        res = tern_verify(w, signed, dkimpy_records())
        # ours is the topmost; message.mbox carries an older signature
        # whose key is not published (permerror)
        assert results(res)[0] == "pass", res
        assert res[0][1:3] == (domain, selector), res
    finally:
        w.close()


def case_round_trip_rfc6376_rsa():
    round_trip("rfc6376.msg", "example.com", "test", keyfile="test.private")


def case_round_trip_rfc6376_ed25519():
    round_trip("rfc6376.msg", "football.example.com", "brisbane", seedfile="rfc8032_7_1.key")


def case_round_trip_ed25519test():
    round_trip("ed25519test.msg", "example.net", "test", seedfile="ed25519test.key")


def case_round_trip_test_message():
    round_trip("test.message", "example.com", "test", keyfile="test2.private")


def case_round_trip_test_extra():
    round_trip("test_extra.message", "example.com", "test", keyfile="test.private")


def case_round_trip_mbox():
    round_trip("message.mbox", "example.com", "test", keyfile="test.private")


def case_nofrom_refused():
    w = Work()
    try:
        assert tern_sign(w, read(os.path.join(DKIMPY, "test_nofrom.message")), "example.com",
                         "test", key=os.path.join(DKIMPY, "test.private")) is None
    finally:
        w.close()


def key_variant(recfile, expected):
    w = Work()
    try:
        signed = tern_sign(w, read(os.path.join(DKIMPY, "test.message")), "example.com", "test",
                           key=os.path.join(DKIMPY, "test.private"))
        rec = read(os.path.join(DKIMPY, recfile)).decode().strip()
        res = tern_verify(w, signed, {"test._domainkey.example.com": rec})
        assert results(res) == [expected], res
    finally:
        w.close()


def case_key_without_k():
    key_variant("test2.txt", "pass")


def case_key_bad_version():
    key_variant("badversion.txt", "permerror")


def case_key_bad_k():
    key_variant("badk.txt", "permerror")


def case_key_corrupted():
    key_variant("test_bad.txt", "permerror")


def case_key_tlsrpt_only():
    key_variant("test_tlsrpt.txt", "permerror")


def mailauth_case(name, expected, now=None):
    def run():
        text = read(os.path.join(MAILAUTH, name)).decode()
        head, _, msg = text.partition("\n\n")
        records = {}
        for line in head.splitlines():
            owner, _, value = line.partition(" ")
            records[owner] = value
        w = Work()
        try:
            res = tern_verify(w, msg.replace("\r\n", "\n").replace("\n", "\r\n").encode(),
                              records, now=now)
            assert results(res) == expected, res
        finally:
            w.close()
    return run


VECTORS = [
    ("dkimpy/rfc6376.signed.msg", case_dkimpy_signed),
    ("dkimpy/ed25519test2.msg (Exim)", case_dkimpy_exim),
    ("dkimpy/test2.message (gmail)", case_dkimpy_gmail),
    ("dkimpy/rfc6376.msg round trip rsa", case_round_trip_rfc6376_rsa),
    ("dkimpy/rfc6376.msg round trip ed25519", case_round_trip_rfc6376_ed25519),
    ("dkimpy/ed25519test.msg round trip", case_round_trip_ed25519test),
    ("dkimpy/test.message round trip", case_round_trip_test_message),
    ("dkimpy/test_extra.message round trip", case_round_trip_test_extra),
    ("dkimpy/message.mbox round trip", case_round_trip_mbox),
    ("dkimpy/test_nofrom.message refused", case_nofrom_refused),
    ("dkimpy/test2.txt", case_key_without_k),
    ("dkimpy/badversion.txt", case_key_bad_version),
    ("dkimpy/badk.txt", case_key_bad_k),
    ("dkimpy/test_bad.txt", case_key_corrupted),
    ("dkimpy/test_tlsrpt.txt", case_key_tlsrpt_only),
    ("mail-auth/dkim/001.txt", mailauth_case("001.txt", ["pass", "pass"])),
    ("mail-auth/dkim/002.txt", mailauth_case("002.txt", ["pass"])),
    ("mail-auth/dkim/003.txt", mailauth_case("003.txt", ["pass", "pass"])),
    ("mail-auth/dkim/004.txt", mailauth_case("004.txt", ["pass"])),
    ("mail-auth/dkim/005.txt", mailauth_case("005.txt", ["pass"], now=1667843664)),
    ("mail-auth/dkim/005.txt expired now", mailauth_case("005.txt", ["fail"], now=1667930065)),
    ("mail-auth/dkim/006.txt", mailauth_case("006.txt", ["pass"])),
    # The ARC vectors' DKIM-Signatures only (the ARC chain is not evaluated):
    # in 001 the mailing list changed the body under the author's stalw.art
    # signature, so that one fails, as dkimpy also says.
    ("mail-auth/arc/001.txt DKIM", mailauth_case("../arc/001.txt", ["pass", "pass", "fail"])),
    ("mail-auth/arc/002.txt DKIM", mailauth_case("../arc/002.txt", ["pass"])),
]


# ---- cross-check with dkimpy ----

SAMPLE = (b"From: Joe SixPack <joe@football.example.com>\r\n"
          b"To: Suzie Q <suzie@shopping.example.net>\r\n"
          b"Cc: Other <other@example.net>\r\n"
          b"Subject: Is dinner  ready?\r\n"
          b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
          b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
          b"MIME-Version: 1.0\r\n"
          b"Content-Type: text/plain;\r\n\tcharset=us-ascii\r\n"
          b"\r\n"
          b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet? \t\r\n\r\nJoe.\r\n\r\n")


class Keys:
    """An RSA-2048 and an Ed25519 key made with openssl, with their DNS
    records and the forms dkimpy wants."""

    def __init__(self, work):
        self.rsa_pem = os.path.join(work.dir, "rsa.pem")
        self.ed_pem = os.path.join(work.dir, "ed25519.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", self.rsa_pem], check=True, capture_output=True)
        subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", self.ed_pem],
                       check=True, capture_output=True)
        rsa_pub = subprocess.run(["openssl", "pkey", "-in", self.rsa_pem, "-pubout", "-outform", "DER"],
                                 check=True, capture_output=True).stdout
        ed_pub = subprocess.run(["openssl", "pkey", "-in", self.ed_pem, "-pubout", "-outform", "DER"],
                                check=True, capture_output=True).stdout[-32:]
        ed_priv = subprocess.run(["openssl", "pkey", "-in", self.ed_pem, "-outform", "DER"],
                                 check=True, capture_output=True).stdout[-32:]
        self.rsa_private = read(self.rsa_pem)
        self.ed_seed = base64.b64encode(ed_priv)
        self.records = {
            "rsa._domainkey.example.com": "v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_pub).decode(),
            "ed._domainkey.example.com": "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_pub).decode(),
        }

    def dnsfunc(self, name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return self.records.get(name.rstrip("."), "").encode()


def cross_tern_signs(dkim):
    w = Work()
    try:
        k = Keys(w)
        for sel, key in (("rsa", k.rsa_pem), ("ed", k.ed_pem)):
            for msg in (SAMPLE, read(os.path.join(DKIMPY, "test.message")),
                        read(os.path.join(DKIMPY, "test_extra.message"))):
                signed = tern_sign(w, msg, "example.com", sel, key=key)
                assert signed is not None
                assert dkim.verify(signed, dnsfunc=k.dnsfunc), "dkimpy rejects Tern's %s signature" % sel
                # and dkimpy notices a change
                assert not dkim.verify(signed.replace(b"From: ", b"From: x", 1), dnsfunc=k.dnsfunc)
    finally:
        w.close()


def cross_dkimpy_signs(dkim):
    w = Work()
    try:
        k = Keys(w)
        canons = [(b"simple", b"simple"), (b"relaxed", b"relaxed"), (b"relaxed", b"simple"),
                  (b"simple", b"relaxed")]
        for sel, key, alg in (("rsa", k.rsa_private, b"rsa-sha256"), ("ed", k.ed_seed, b"ed25519-sha256")):
            for canon in canons:
                sig = dkim.sign(SAMPLE, sel.encode(), b"example.com", key, canonicalize=canon,
                                signature_algorithm=alg)
                res = tern_verify(w, sig + SAMPLE, k.records)
                assert results(res) == ["pass"], (sel, canon, res)
                res = tern_verify(w, sig + SAMPLE.replace(b"hungry", b"angry"), k.records)
                assert results(res) == ["fail"], (sel, canon, res)
        # l=: appended text is a policy result unless allowed
        sig = dkim.sign(SAMPLE, b"rsa", b"example.com", k.rsa_private, length=True)
        assert b"l=" in sig
        appended = sig + SAMPLE + b"Buy now!\r\n"
        assert results(tern_verify(w, sig + SAMPLE, k.records)) == ["pass"]
        assert results(tern_verify(w, appended, k.records)) == ["policy"]
        assert results(tern_verify(w, appended, k.records, extra=["--allow-partial"])) == ["pass"]
    finally:
        w.close()


def load_dkim():
    try:
        import dkim
        return dkim
    except ImportError:
        return None


def run_all():
    """(name, problem or None) for every vector and cross-check."""
    out = []
    for name, fn in VECTORS:
        try:
            fn()
            out.append((name, None))
        except AssertionError as e:
            out.append((name, str(e) or "assertion failed"))
    dkim = load_dkim()
    for name, fn in (("dkimpy verifies Tern", cross_tern_signs), ("Tern verifies dkimpy", cross_dkimpy_signs)):
        if dkim is None:
            out.append((name, "python3-dkim missing"))
            continue
        try:
            fn(dkim)
            out.append((name, None))
        except AssertionError as e:
            out.append((name, str(e) or "assertion failed"))
    return out


@pytest.mark.parametrize("name,fn", VECTORS, ids=[v[0] for v in VECTORS])
def test_vector(name, fn):
    fn()


def test_dkimpy_verifies_tern():
    dkim = load_dkim()
    assert dkim is not None, "python3-dkim is missing (scripts/deps.sh installs it)"
    cross_tern_signs(dkim)


def test_tern_verifies_dkimpy():
    dkim = load_dkim()
    assert dkim is not None, "python3-dkim is missing (scripts/deps.sh installs it)"
    cross_dkimpy_signs(dkim)


if __name__ == "__main__":
    passed = failed = 0
    for name, problem in run_all():
        if problem:
            failed += 1
            print("FAIL %s: %s" % (name, problem))
        else:
            passed += 1
    print("dkim: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
