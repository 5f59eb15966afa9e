#!/usr/bin/env bash
# IMAP benchmark: 50 concurrent clients run one fixed workload (log in,
# SELECT a 10 000-message INBOX, FETCH 1:* (FLAGS ENVELOPE), FETCH 100
# whole messages, SEARCH TEXT, STORE +FLAGS / -FLAGS on 50, COPY 20,
# EXPUNGE, IDLE a moment, LOGOUT) against Tern and then against a private
# Dovecot (Debian dovecot-imapd: its own config, base_dir and Maildir in a
# temporary folder, a free high port on 127.0.0.1, never /etc/dovecot nor
# ports 143/993), both holding the same messages, plaintext on loopback.
# Prints commands per second and per-command median / p99 latency for
# both, and the ratio.  The load generator is bench/imap/bench.py
# (Python multiprocessing, one process per client).
#
#   bench/imap/run.sh           50 clients x 2 rounds, 10 000 messages
#   bench/imap/run.sh --quick   50 clients x 1 round, 500 messages (< 30 s);
#                               exits 1 when a server fails the workload
# Environment: TERN_BIN (default build/tern), BENCH_CLIENTS,
# BENCH_MESSAGES, BENCH_ROUNDS; BENCH_ONLY="tern" skips Dovecot;
# BENCH_KEEP=1 keeps the temporary folders.
# Then bench/imap/idle.py measures, for Tern, the IDLE push latency (SMTP
# delivery to untagged EXISTS) and the memory per idle TLS connection
# (BENCH_IDLE_CONNECTIONS, default 2000; 50 in --quick).
# Output: tern_commands_per_s=N dovecot_commands_per_s=N ratio_tern_dovecot=R,
# then idle_push_ms_median=N idle_push_ms_max=N idle_conn_kib=N
set -u
cd "$(dirname "$0")/../.."
for a in "$@"; do
	case $a in
	--quick) ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
	esac
done
export TERN_BIN=${TERN_BIN:-$PWD/build/tern}
[ -x "$TERN_BIN" ] || make -s all >/dev/null || exit 1
/usr/bin/python3 bench/imap/bench.py "$@" || exit 1
# IDLE: push latency and memory per idle TLS connection (Tern only)
exec /usr/bin/python3 bench/imap/idle.py "$@"
