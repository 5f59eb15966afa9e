#!/usr/bin/env bash
# POP3 download benchmark: how fast do clients empty their mailboxes?
#
# C concurrent clients (20) each log in (USER/PASS), run STAT and LIST,
# then retrieve and delete all of their M messages (200 of 20 KiB),
# pipelined (RETR n, DELE n, ..., QUIT), against two servers on 127.0.0.1
# holding the same messages:
#   tern      a fresh `tern init` in a temporary folder, mailboxes filled
#             through SMTP; deletions are committed at QUIT
#   dovecot   a private Dovecot (Debian dovecot-pop3d) with its own config,
#             base_dir and Maildirs in a temporary folder and a high port,
#             never /etc/dovecot's instance nor ports 110/995; each Maildir
#             holds copies of Tern's stored files
# The clients are one C process (bench/pop3/load.c, built here with
# cc -O2): an epoll loop that parses and checks every reply in place (each
# RETR ends in CRLF.CRLF and its unstuffed size equals LIST's), so it uses
# a small fraction of the CPU the servers use on the same cores.
# Wall time runs from the first connect until the last client got the
# reply to its QUIT; the rate is messages per second over all clients.
# Each run also reports the login phase (first connect until the last
# client got the +OK to PASS) and the download rate: messages divided by
# the median, over the clients, of each client's download time (from its
# own PASS +OK to its own QUIT +OK, so it includes the QUIT commit and
# leaves out password verification).
# Each server is measured 3 times, taking turns on refilled mailboxes, and
# the median is reported.
#
#   bench/pop3/run.sh           20 clients x 200 messages of 20 KiB, 3 runs
#   bench/pop3/run.sh --quick   3 clients x 20 messages, 1 run (< 30 s); exits
#                               1 if a client missed a message or Tern kept one
# Environment: TERN_BIN (default build/tern), BENCH_CLIENTS, BENCH_MESSAGES,
# BENCH_SIZE, BENCH_RUNS override the sizes; BENCH_ONLY="tern" skips Dovecot;
# BENCH_KEEP=1 keeps the temporary folders.  The private Dovecot needs
# root; run as another user, the benchmark skips it and says so.
# Output ends with machine-readable lines:
#   tern_msgs_per_s=N  dovecot_msgs_per_s=N  ratio_tern_dovecot=R
#   tern_login_s=S  dovecot_login_s=S  (median login phase)
#   tern_dl_msgs_per_s=N  dovecot_dl_msgs_per_s=N  ratio_dl_tern_dovecot=R
set -u
. "$(dirname "$0")/../args.sh" "$@"
cd "$(dirname "$0")/../.."
if [ $QUICK = 1 ]; then
	export BENCH_CLIENTS=${BENCH_CLIENTS:-3} BENCH_MESSAGES=${BENCH_MESSAGES:-20}
	export BENCH_RUNS=${BENCH_RUNS:-1}
fi
LOADDIR=$(mktemp -d "${TMPDIR:-/tmp}/tern-bench-pop3-load.XXXXXX") || exit 1
trap 'rm -rf "$LOADDIR"' EXIT
cc -O2 -Wall -o "$LOADDIR/load" bench/pop3/load.c || { echo "cannot build bench/pop3/load.c" >&2; exit 1; }
export BENCH_LOAD=$LOADDIR/load
if [ ! -x /usr/sbin/dovecot ] && [ -z "${BENCH_ONLY:-}" ]; then
	echo "dovecot not installed (scripts/deps.sh): Tern only"
	export BENCH_ONLY=tern
fi
export TERN_BIN=${TERN_BIN:-$PWD/build/tern}
timeout $([ $QUICK = 1 ] && echo 60 || echo 1800) /usr/bin/python3 bench/pop3/bench.py
