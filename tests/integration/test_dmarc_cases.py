"""The DMARC cases of ../shared/testdata/dmarc/dmarc-cases.yml (RFC 7489:
record parsing, policy discovery, alignment, disposition) run against
Tern's DMARC library (src/mailauth/dmarc*.c) through the driver mode of
build/tests/test-dmarc.

The file's stand-in Public Suffix List (com, net, org, test, uk, co.uk) is
written to a small public_suffix_list.dat that the driver loads with libpsl.
Discovery cases are served from an in-memory DNS, once answered inside the
query and once answered later (--defer); alignment cases evaluate the
case's record as found at the From domain; disposition cases build a
passing or failing message from the case's "dmarc" value.

Run directly (/usr/bin/python3 tests/integration/test_dmarc_cases.py) for the
summary line "dmarc: N passed, N failed".
"""
import os
import subprocess
import sys
import tempfile

import pytest

import yaml  # noqa: E402 (python3-yaml, scripts/deps.sh)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = os.path.join(os.environ.get("TERN_SHARED_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata")),
                     "dmarc", "dmarc-cases.yml")
STAND_IN_PSL = ["com", "net", "org", "test", "uk", "co.uk"]


def driver_path():
    tern = os.environ.get("TERN_BIN")
    if tern:
        path = os.path.join(os.path.dirname(tern), "tests", "test-dmarc")
        if os.path.exists(path):
            return path
    return os.path.join(ROOT, "build", "tests", "test-dmarc")


def load_cases():
    with open(CASES) as f:
        data = yaml.safe_load(f)
    out = []
    for kind in ("record", "discovery", "alignment", "disposition"):
        for case in data.get(kind) or []:
            out.append((kind, case))
    return out


def psl_file(tmp):
    path = os.path.join(tmp, "public_suffix_list.dat")
    with open(path, "w") as f:
        f.write("// ===BEGIN ICANN DOMAINS===\n")
        for s in STAND_IN_PSL:
            f.write(s + "\n")
        f.write("// ===END ICANN DOMAINS===\n")
    return path


def run(args):
    p = subprocess.run([driver_path()] + args, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return None, "driver exit %d: %s" % (p.returncode, p.stderr.strip())
    out = {}
    for item in p.stdout.split():
        k, _, v = item.partition("=")
        out[k] = v
    return out, None


def action_of(out):
    """The case files' action word for an evaluation's disposition."""
    if out["disposition"] in ("reject", "quarantine"):
        return out["disposition"]
    if out["local_policy"] == "1":
        return "local-policy"
    return "accept"


def check_record(case, psl):
    out, err = run(["--psl", psl, "--record", case["txt"]])
    if err:
        return [err]
    exp = case["expect"]
    problems = []
    if (out.get("valid") == "1") != bool(exp["valid"]):
        problems.append("valid=%s, expected %s" % (out.get("valid"), exp["valid"]))
    for key in ("p", "sp", "adkim", "aspf", "pct"):
        if key in exp and exp[key] is not None and out.get(key) != str(exp[key]):
            problems.append("%s=%s, expected %s" % (key, out.get(key), exp[key]))
    if "action" in exp and out.get("action") != exp["action"]:
        problems.append("action=%s, expected %s" % (out.get("action"), exp["action"]))
    return problems


def check_discovery(case, psl, tmp):
    zone = os.path.join(tmp, "zone-%s" % case["id"])
    with open(zone, "w") as f:
        for name, val in case["dns"].items():
            if isinstance(val, list):
                for txt in val:
                    f.write("%s\tTXT\t%s\n" % (name, txt))
            else:
                f.write("%s\t%s\n" % (name, val))
    from_domain = case["from"].rpartition("@")[2]
    exp = case["expect"]
    problems = []
    for mode in ([], ["--defer"]):
        out, err = run(["--psl", psl, "--from", from_domain, "--dns", zone] + mode)
        tag = "(deferred) " if mode else ""
        if err:
            problems.append(tag + err)
            continue
        if "queries" in exp and out["queries"] != ",".join(exp["queries"]):
            problems.append("%squeries %s, expected %s" % (tag, out["queries"], exp["queries"]))
        if "policy" in exp and (out["policy"] != exp["policy"] or out["report"] != "1"):
            problems.append("%spolicy %s (record found: %s), expected %s"
                            % (tag, out["policy"], out["report"], exp["policy"]))
        if "result" in exp and out["result"] != exp["result"]:
            problems.append("%sresult %s, expected %s" % (tag, out["result"], exp["result"]))
        if exp.get("action") == "no-dmarc-processing" and (
                out["result"] != "none" or out["disposition"] != "none" or out["report"] != "0"):
            problems.append("%sDMARC processing applied: %s" % (tag, out))
    return problems


def check_alignment(case, psl):
    from_domain = case["from"].rpartition("@")[2]
    args = ["--psl", psl, "--from", from_domain, "--record", case["record"],
            "--spf", case["spf"]["result"]]
    if case.get("mail_from") == "<>":
        args += ["--mail-from", "", "--helo", case.get("helo", case["spf"]["domain"])]
    else:
        args += ["--mail-from", case["spf"]["domain"]]
        if case.get("helo"):
            args += ["--helo", case["helo"]]
    for sig in case.get("dkim") or []:
        args += ["--dkim", "%s:%s" % (sig["result"], sig["d"])]
    out, err = run(args)
    if err:
        return [err]
    exp = case["expect"]
    problems = []
    if out["result"] != exp["dmarc"]:
        problems.append("dmarc=%s, expected %s" % (out["result"], exp["dmarc"]))
    for key in ("spf_aligned", "dkim_aligned"):
        if key in exp and (out[key] == "1") != bool(exp[key]):
            problems.append("%s=%s, expected %s" % (key, out[key], exp[key]))
    if "disposition" in exp and action_of(out) != exp["disposition"]:
        problems.append("disposition %s, expected %s" % (action_of(out), exp["disposition"]))
    return problems


def check_disposition(case, psl):
    args = ["--psl", psl, "--from", "example.com", "--record", case["record"],
            "--spf", "none", "--mail-from", "bounce.example.net"]
    if case["dmarc"] == "pass":
        args += ["--dkim", "pass:example.com"]
    else:
        args += ["--dkim", "pass:example.net"]
    problems = []
    # with pct=0 no random draw may select; with pct=100 every draw does
    for rnd in ("0", "99"):
        out, err = run(args + ["--random", rnd])
        if err:
            return [err]
        if out["result"] != case["dmarc"]:
            problems.append("dmarc=%s, expected %s" % (out["result"], case["dmarc"]))
        exp = case["expect"]
        if action_of(out) != exp["action"]:
            problems.append("random %s: action %s, expected %s" % (rnd, action_of(out), exp["action"]))
        if exp.get("report") and out["report"] != "1":
            problems.append("not recorded for reports")
    return problems


def check(kind, case, psl, tmp):
    if kind == "record":
        return check_record(case, psl)
    if kind == "discovery":
        return check_discovery(case, psl, tmp)
    if kind == "alignment":
        return check_alignment(case, psl)
    return check_disposition(case, psl)


@pytest.fixture(scope="module")
def workdir():
    tmp = tempfile.mkdtemp(prefix="tern-dmarc-")
    yield tmp, psl_file(tmp)
    subprocess.run(["rm", "-rf", tmp], check=False)


def test_case_count():
    cases = load_cases()
    assert len(cases) == 41


@pytest.mark.parametrize("kind,case", load_cases() if os.path.exists(CASES) else [],
                         ids=lambda v: v["id"] if isinstance(v, dict) else v)
def test_dmarc_case(workdir, kind, case):
    tmp, psl = workdir
    problems = check(kind, case, psl, tmp)
    assert not problems, "%s: %s" % (case["id"], "; ".join(problems))


if __name__ == "__main__":
    tmp = tempfile.mkdtemp(prefix="tern-dmarc-")
    psl = psl_file(tmp)
    passed = failed = 0
    for kind, case in load_cases():
        problems = check(kind, case, psl, tmp)
        if problems:
            failed += 1
            print("FAIL %s: %s" % (case["id"], "; ".join(problems)))
        else:
            passed += 1
    subprocess.run(["rm", "-rf", tmp], check=False)
    print("dmarc: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
