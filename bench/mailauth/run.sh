#!/usr/bin/env bash
# Mail authentication benchmark: what do DKIM signing and verification cost,
# and how much time do SPF, DKIM (and DMARC, once Tern has it) add to mail
# arriving on port 25?
#
# 1. DKIM rate.  N messages of 20 KiB (plain text, CRLF), an RSA-2048 and an
#    Ed25519 key made with openssl.  Tern's library (bench/mailauth/rate.c,
#    built here with cc -O2 against build/libtern.a) and dkimpy (Debian's
#    python3-dkim, dkim.sign / dkim.verify with a dnsfunc returning the key
#    record) sign the same messages with the same keys (relaxed/relaxed)
#    and verify the same signed messages, one thread, in process; messages
#    per second, median of 3 runs, and the ratio Tern/dkimpy.  Each side
#    also verifies everything the other signed.
# 2. Port 25.  The test DNS (nsd, tests/harness/testdns.py) serves, for M
#    sender domains, SPF (pass for 127.0.0.1), an RSA-2048 DKIM key and a
#    DMARC record.  M messages, each signed for its own domain, are sent
#    one per connection, one after the other, to a fresh Tern with the
#    checks on (first pass: cold cache; second pass, same domains: warm
#    cache) and to a fresh Tern with them off; the time from the final
#    "." to the 250 is measured: median, p99 and the difference (3 runs,
#    the samples pooled).  These servers run one event loop (each loop
#    has its own DNS cache).  Then throughput: smtp-source (bench/smtp-in's
#    load generator) sends one signed message T times over S sessions to a
#    fresh Tern with default settings, checks on and off; the share of
#    inbound time spent on the checks is 1 - rate_on / rate_off.  Then one
#    more run per server under `perf record` (DWARF call graphs): the share
#    of the server's CPU samples in the checks' code and in their DNS
#    lookups, within one run (bench.py's perf_share explains the rule).
#    DMARC is measured when this Tern accepts mailauth.dmarc (checked with
#    `tern config check`); otherwise SPF+DKIM, and the output says so.
#
#   bench/mailauth/run.sh           N=300, M=200, T=2000 over 20 sessions, 3 runs
#   bench/mailauth/run.sh --quick   N=20, M=8, T=60 over 4 sessions, 1 run
#                                   (< 30 s); exits 1 on any failure
# Environment: TERN_BIN (default build/tern), BENCH_MESSAGES (N),
# BENCH_SMTP_MESSAGES (M), BENCH_LOAD_MESSAGES (T), BENCH_SESSIONS (S),
# BENCH_RUNS override the sizes; BENCH_PART=rate runs part 1 only;
# BENCH_KEEP=1 keeps the temporary folders.  TMPDIR picks where the
# stores live (a real disk, not tmpfs, for the figures to mean anything).
# Needs python3-dkim, python3-nacl, nsd, openssl and postfix (smtp-source),
# as scripts/deps.sh installs them.
# Output ends with machine-readable lines (key=value), among them:
#   dkim_rsa_verify_tern_msgs_per_s=N  dkim_rsa_verify_ratio_tern_dkimpy=R
#   smtp_warm_added_median_ms=X  smtp_load_mailauth_share_percent=P
#   smtp_load_profile_mailauth_percent=P (the perf profile's share)
set -u
. "$(dirname "$0")/../args.sh" "$@"
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export TERN_BIN=${TERN_BIN:-$PWD/$BUILD/tern}
LIB=$(dirname "$TERN_BIN")/libtern.a
[ -f "$LIB" ] || LIB=$PWD/$BUILD/libtern.a
[ -f "$LIB" ] || { echo "bench: $LIB missing (run make)" >&2; exit 1; }
RATEDIR=$(mktemp -d "${TMPDIR:-/tmp}/tern-bench-mailauth-rate.XXXXXX") || exit 1
trap 'rm -rf "$RATEDIR"' EXIT
PKGS=$(sed -n 's/^PKGS *:= *//p' Makefile)
cc -O2 -std=gnu17 -Wall -Wextra -Isrc -D_GNU_SOURCE -o "$RATEDIR/rate" bench/mailauth/rate.c \
	"$LIB" $(pkg-config --libs $PKGS) -lunistring -lpthread -lm ||
	{ echo "bench: cannot build bench/mailauth/rate.c" >&2; exit 1; }
export BENCH_RATE=$RATEDIR/rate BENCH_QUICK=$QUICK
timeout $([ $QUICK = 1 ] && echo 60 || echo 1800) /usr/bin/python3 bench/mailauth/bench.py
