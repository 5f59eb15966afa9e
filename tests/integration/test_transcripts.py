"""One test per tests/integration/transcripts/*.t, run against the shared
server (see tests/harness/transcript.py for the file format)."""
import glob
import os

import pytest

import transcript

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transcripts")
FILES = sorted(glob.glob(os.path.join(DIR, "*.t")))


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[:-2] for f in FILES])
def test_transcript(shared, path):
    ok, msg = transcript.run(path, shared)
    print(msg)
    assert ok, msg
