#!/usr/bin/env bash
# IMAP benchmark: 50 concurrent clients run one fixed workload (log in,
# SELECT a 10 000-message INBOX, FETCH 1:* (FLAGS ENVELOPE), FETCH 100
# whole messages, SEARCH TEXT, STORE +FLAGS / -FLAGS on 50, COPY 20,
# EXPUNGE, IDLE a moment, LOGOUT) against Tern and then against a private
# Dovecot (Debian dovecot-imapd: its own config, base_dir and Maildir in a
# temporary folder, a free high port on 127.0.0.1, never /etc/dovecot nor
# ports 143/993), both holding the same messages and verifying the same
# password hash, both warmed the same way before the clients start,
# plaintext on loopback.  Prints commands per second, server CPU and
# per-command median / p99 latency for both, and the ratios.  The load
# generator is bench/imap/bench.py (Python multiprocessing, one process
# per client); bench/imap/dovecot.py sets up the private Dovecot.
#
#   bench/imap/run.sh           50 clients x 2 rounds, 10 000 messages
#   bench/imap/run.sh --quick   50 clients x 1 round, 500 messages, 50 idle
#                               connections (< 60 s); exits 1 when a client
#                               of either server fails or times out
# Environment: TERN_BIN (default build/tern), BENCH_CLIENTS,
# BENCH_MESSAGES, BENCH_ROUNDS; BENCH_CMD_TIMEOUT (seconds a command may
# take, 120; quick 20) and BENCH_RUN_LIMIT (seconds the clients of one
# server may run in all, 300; quick 25): a client past either stops and
# is reported as a timeout.  BENCH_ONLY="tern" skips Dovecot;
# BENCH_ONLY="tern dovecot dovecot-fts" adds a Dovecot with full-text
# search (fts-xapian, Debian dovecot-fts-xapian, not installed by
# scripts/deps.sh); BENCH_KEEP=1 keeps the temporary folders.  Dovecot
# needs root.
# Then bench/imap/ext.py (issue #4) runs SORT, THREAD and a COMPRESS=DEFLATE
# session on a mailbox of the same size, against Tern and a private Dovecot
# with imap_zlib: BENCH_EXT_CLIENTS (10) clients x BENCH_EXT_ROUNDS (10;
# quick 2) of each of UID SORT (DATE), UID THREAD REFERENCES and a
# compressed FETCH 1:* (ENVELOPE), every answer checked; it prints
# operations per second, median / p99 latency and the ratios
# (ratio_tern_dovecot_sort=R ..._thread=R ..._fetch_z=R).
# BENCH_SKIP_EXT=1 skips it.
# Then bench/imap/idle.py measures the IDLE push latency of Tern (SMTP
# delivery to untagged EXISTS) and, for both servers, the memory per idle
# TLS connection (Dovecot with imap-hibernate), BENCH_IDLE_CONNECTIONS
# connections (default 2000; 50 in --quick); BENCH_SKIP_IDLE=1 skips it.
# Output ends with: tern_commands_per_s=N dovecot_commands_per_s=N
# ratio_tern_dovecot=R, then idle_push_ms_median=N idle_push_ms_max=N
# tern_idle_conn_kib=N dovecot_idle_conn_kib=N ratio_idle_conn_dovecot_tern=R
set -u
. "$(dirname "$0")/../args.sh" "$@"
cd "$(dirname "$0")/../.."
export TERN_BIN=${TERN_BIN:-$PWD/build/tern}
[ -x "$TERN_BIN" ] || make -s all >/dev/null || exit 1
# outer bounds, above the scripts' own timeouts; SIGINT lets them stop
# the servers they started
if [ $QUICK = 1 ]; then LOAD_LIMIT=100 EXT_LIMIT=60 IDLE_LIMIT=60
else LOAD_LIMIT=1800 EXT_LIMIT=1800 IDLE_LIMIT=1800; fi
timeout -s INT -k 20 $LOAD_LIMIT /usr/bin/python3 bench/imap/bench.py "$@" || exit 1
if [ -z "${BENCH_SKIP_EXT:-}" ]; then
	timeout -s INT -k 20 $EXT_LIMIT /usr/bin/python3 bench/imap/ext.py "$@" || exit 1
fi
[ -n "${BENCH_SKIP_IDLE:-}" ] && exit 0
timeout -s INT -k 20 $IDLE_LIMIT /usr/bin/python3 bench/imap/idle.py "$@" || exit 1
exit 0
