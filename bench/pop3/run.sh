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
# Wall time runs from the start of the clients until the last one got the
# reply to its QUIT; the rate is messages per second over all clients.
# Clients are processes reading whole buffers, so they are not the limit.
#
#   bench/pop3/run.sh           20 clients x 200 messages of 20 KiB
#   bench/pop3/run.sh --quick   3 clients x 20 messages (< 30 s); exits 1 if a
#                               client missed a message or Tern kept one
# Environment: TERN_BIN (default build/tern), BENCH_CLIENTS, BENCH_MESSAGES,
# BENCH_SIZE override the sizes; BENCH_ONLY="tern" skips Dovecot;
# BENCH_KEEP=1 keeps the temporary folders.  The private Dovecot needs
# root; run as another user, the benchmark skips it and says so.
# Output ends with machine-readable lines:
#   tern_msgs_per_s=N  dovecot_msgs_per_s=N  ratio_tern_dovecot=R
set -u
cd "$(dirname "$0")/../.."
QUICK=0
for a in "$@"; do
	case $a in
	--quick) QUICK=1 ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
	esac
done
if [ $QUICK = 1 ]; then
	export BENCH_CLIENTS=${BENCH_CLIENTS:-3} BENCH_MESSAGES=${BENCH_MESSAGES:-20}
fi
if [ ! -x /usr/sbin/dovecot ] && [ -z "${BENCH_ONLY:-}" ]; then
	echo "dovecot not installed (scripts/deps.sh): Tern only"
	export BENCH_ONLY=tern
fi
export TERN_BIN=${TERN_BIN:-$PWD/build/tern}
exec timeout $([ $QUICK = 1 ] && echo 60 || echo 900) /usr/bin/python3 bench/pop3/bench.py
