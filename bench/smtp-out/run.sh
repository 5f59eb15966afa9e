#!/usr/bin/env bash
# Outbound SMTP benchmark (issue #6): 5000 messages of 4 KiB to 50 remote
# domains, submitted to Tern and to a private Postfix (same static next
# hops: an smtp-sink on loopback), time from the first submission to the
# last delivery; then `tern queue list` with 100 000 queued messages.
# The work is done by bench/smtp-out/bench.py (its docstring says what is
# measured and how both servers are configured).
#
#   bench/smtp-out/run.sh           5000 messages; listing 100 000
#   bench/smtp-out/run.sh --quick   300 messages; listing 2000 (< 30 s);
#                                   exits 1 if a server missed a message
# Environment: TERN_BIN (default build/tern), BENCH_MESSAGES, BENCH_DOMAINS,
# BENCH_CONNECTIONS, BENCH_QUEUE_MESSAGES, BENCH_ONLY=tern, BENCH_KEEP=1.
# Output ends with: tern_msgs_per_s=N postfix_msgs_per_s=N
# ratio_tern_postfix=R queue_list_messages=N queue_list_s=T
# queue_list_json_s=T.  Needs the Debian package postfix (smtp-sink) and,
# for the private Postfix, root.
set -u
. "$(dirname "$0")/../args.sh" "$@"
cd "$(dirname "$0")/../.."
export TERN_BIN=${TERN_BIN:-$PWD/build/tern}
[ -x "$TERN_BIN" ] || make -s all >/dev/null || exit 1
# outer bound, above the script's own limits; SIGINT lets it stop the
# servers it started
if [ $QUICK = 1 ]; then LIMIT=28; else LIMIT=1800; fi
exec timeout -s INT -k 10 $LIMIT /usr/bin/python3 bench/smtp-out/bench.py "$@"
