#!/usr/bin/env bash
# Inbound SMTP benchmark: how fast does a server take mail from the internet
# and put it on stable storage?
#
# Postfix's load generator smtp-source sends M messages of 4 KiB payload,
# one message per connection (as MX traffic arrives), over S concurrent
# sessions to three receivers on 127.0.0.1:
#   tern      a fresh `tern init` in a temporary folder, one domain and one
#             user; every message is stored (fsync'd, indexed) before its 250
#   postfix   a private Postfix instance (own config, queue and data folders
#             in the temporary folder, high port, never port 25, never
#             /etc/postfix or the system's sendmail) delivering to a Maildir
#             through virtual(8)
#   sink      smtp-sink: speaks SMTP and throws the mail away, the ceiling
#             of what smtp-source and the loopback can do
# Wall time runs from the start of smtp-source until every message is
# stored (Tern: counted in its index; Postfix: files in Maildir new/ after
# the queue drains; sink: smtp-source finished and smtp-sink counted them).
#
#   bench/smtp-in/run.sh           5000 messages, 20 sessions, 3 runs, medians
#   bench/smtp-in/run.sh --quick   200 messages, 5 sessions, 1 run (< 30 s);
#                                  exits 1 if any receiver missed a message
# Environment: TERN_BIN (default build/tern), BENCH_MESSAGES, BENCH_SESSIONS,
# BENCH_RUNS override the sizes; BENCH_ONLY="postfix sink" skips receivers;
# TMPDIR picks the file system the stores live on (default /tmp; it must
# be a real disk for the figures to mean anything, not tmpfs);
# BENCH_KEEP=1 keeps the temporary folder (logs, stores) for inspection.
# Output ends with machine-readable lines, one per line:
#   tern_msgs_per_s=N  postfix_msgs_per_s=N  sink_msgs_per_s=N
#   ratio_tern_postfix=R  ratio_tern_sink=R
# Needs the Debian package postfix (smtp-source, smtp-sink).  The private
# Postfix instance needs root; run as another user, the benchmark skips it
# and says so.
set -u
. "$(dirname "$0")/../args.sh" "$@"
cd "$(dirname "$0")/../.."
ROOT=$PWD
# SEND_TIMEOUT bounds one smtp-source run and Postfix's queue drain;
# COUNT_TIMEOUT the wait for a count that should already be complete.
if [ $QUICK = 1 ]; then
	M=${BENCH_MESSAGES:-200}; S=${BENCH_SESSIONS:-5}; RUNS=${BENCH_RUNS:-1}
	SEND_TIMEOUT=12; COUNT_TIMEOUT=5
else
	M=${BENCH_MESSAGES:-5000}; S=${BENCH_SESSIONS:-20}; RUNS=${BENCH_RUNS:-3}
	SEND_TIMEOUT=300; COUNT_TIMEOUT=30
fi
SYSTEMS=${BENCH_ONLY:-tern postfix sink}
SIZE=4096
TERN_BIN=${TERN_BIN:-$ROOT/build/tern}
case $TERN_BIN in /*) ;; *) TERN_BIN=$ROOT/$TERN_BIN ;; esac
PY=/usr/bin/python3
SOURCE=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
RCPT=bench@example.test
SENDER=load@source.example

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }
now() { date +%s.%N; }

if [ "$(id -u)" != 0 ] && [ -z "${BENCH_ONLY:-}" ]; then
	log "not root: skipping the private Postfix instance (it needs root)"
	SYSTEMS="tern sink"
fi
for f in "$SOURCE" "$SINK" "$PY"; do
	[ -x "$f" ] || die "$f missing: apt-get install postfix python3 (or run scripts/deps.sh)"
done

# Not under $TMPDIR: the private Postfix's daemons run as postfix and nobody
# and must reach every folder on the way (a TMPDIR under /root, mode 0700,
# made its master fail to open its lock file).  /var/tmp is mode 1777.
umask 022
WORK=$(mktemp -d /var/tmp/tern-bench.XXXXXX) || die "mktemp failed"
chmod 755 "$WORK"
PIDS=()
PF_CONF=
WATCHDOG=
cleanup() {
	if [ -n "$PF_CONF" ] && [ -f "$PF_CONF/main.cf" ]; then
		# abort: stop at once; the instance is thrown away with its queue
		timeout 20 /usr/sbin/postfix -c "$PF_CONF" abort >/dev/null 2>&1
		# it returns before every daemon is gone; wait (bounded)
		for _ in $(seq 50); do
			[ -f "$WORK/postfix/queue/pid/master.pid" ] || break
			kill -0 "$(cat "$WORK/postfix/queue/pid/master.pid" 2>/dev/null)" 2>/dev/null || break
			sleep 0.1
		done
	fi
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
	[ -n "${BENCH_KEEP:-}" ] && { log "kept $WORK"; return; }
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port nobody listens on (a fresh random pick each call), below the
# ephemeral range (32768-60999): a client socket there makes bind fail.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 12000))
		port_free "$p" && { echo "$p"; return 0; }
	done
	die "no free port found"
}
# Wait (at most $2 seconds) until something accepts on 127.0.0.1:$1.
wait_listen() {
	local deadline=$(( $(date +%s) + $2 ))
	while port_free "$1"; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# Poll "$1" (a command printing a number) until it prints >= $2, for at most
# $3 seconds.  Prints the time it got there; logs and returns 1 on timeout.
wait_count() {
	local cmd=$1 want=$2 limit=$3 start n
	start=$(date +%s)
	while :; do
		n=$($cmd 2>/dev/null)
		[ "${n:-0}" -ge "$want" ] && { now; return 0; }
		if [ $(( $(date +%s) - start )) -ge "$limit" ]; then
			log "$cmd: counted ${n:-0} of $want after ${limit}s"
			return 1
		fi
		sleep 0.02
	done
}

# Send M messages to 127.0.0.1:$1.  Sets ELAPSED_START.
send_load() {
	local port=$1 out=$2
	ELAPSED_START=$(now)
	# -s sessions, -m messages, -l payload bytes; one message per connection
	timeout "$SEND_TIMEOUT" "$SOURCE" -s "$S" -m "$M" -l "$SIZE" -M bench.source.example \
		-f "$SENDER" -t "$RCPT" "127.0.0.1:$1" >"$out" 2>&1
	local rc=$?
	[ $rc = 124 ] && echo "smtp-source timed out after ${SEND_TIMEOUT}s" >>"$out"
	[ $rc != 0 ] && echo "smtp-source exit status $rc" >>"$out"
	return $rc
}

rate() { $PY -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print('%.1f' % (int(sys.argv[3])/t if t>0 else 0))" "$@"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }

FAILED=()

# ---------------------------------------------------------------- smtp-sink
sink_setup() {
	SINK_PORT=$(pick_port)
	# -c counts delivered messages on stdout; backlog 256
	local u=()
	[ "$(id -u)" = 0 ] && u=(-u nobody)   # smtp-sink refuses to run as root
	"$SINK" "${u[@]}" -c "127.0.0.1:$SINK_PORT" 256 >"$WORK/sink.out" 2>&1 &
	PIDS+=($!)
	wait_listen "$SINK_PORT" 10 || { log "smtp-sink did not start"; return 1; }
}
sink_count() { tr '\r' '\n' <"$WORK/sink.out" | sed -n 's/.* mesg=\([0-9][0-9]*\).*/\1/p' | tail -1; }
sink_run() {
	local base t1
	base=$(sink_count); base=${base:-0}
	send_load "$SINK_PORT" "$WORK/source-sink.out" || { log "smtp-source to sink failed: $(tail -3 "$WORK/source-sink.out")"; return 1; }
	t1=$(wait_count sink_count $((base + M)) "$COUNT_TIMEOUT") || return 1
	rate "$ELAPSED_START" "$t1" "$M"
}

# ------------------------------------------------------------------ Postfix
postfix_setup() {
	local d=$WORK/postfix
	[ "$(id -u)" = 0 ] || { log "the private Postfix instance needs root"; return 1; }
	[ -x /usr/sbin/postfix ] || { log "/usr/sbin/postfix missing (apt-get install postfix)"; return 1; }
	PF_PORT=$(pick_port)
	PF_CONF=$d/etc
	mkdir -p "$PF_CONF" "$d/queue" "$d/data" "$d/mail"
	chown root:root "$d/queue"
	chown postfix:postfix "$d/data"
	chown nobody:nogroup "$d/mail"
	echo "$RCPT example.test/bench/" >"$PF_CONF/vmailbox"
	cat >"$PF_CONF/main.cf" <<EOF
# Private benchmark instance: nothing here touches /etc/postfix's instance.
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench-postfix.example.test
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = example.test
virtual_mailbox_base = $d/mail
virtual_mailbox_maps = texthash:$PF_CONF/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
default_transport = error:benchmark instance does not relay
relay_transport = error:benchmark instance does not relay
biff = no
smtpd_banner = \$myhostname ESMTP
maillog_file = $d/maillog
maillog_file_prefixes = $d
EOF
	# Only the services this flow needs; every one unchrooted; smtpd on a
	# high loopback port only.  No pickup: the system sendmail is never used.
	cat >"$PF_CONF/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
showq     unix n - n - - showq
postlog   unix-dgram n - n - 1 postlogd
EOF
	timeout 30 /usr/sbin/postfix -c "$PF_CONF" start >"$WORK/postfix-start.out" 2>&1 ||
		{ log "postfix start failed: $(tail -5 "$WORK/postfix-start.out" "$d/maillog" 2>/dev/null)"; return 1; }
	wait_listen "$PF_PORT" 15 || { log "postfix did not listen on $PF_PORT"; return 1; }
	# Belt and braces: this instance must not have taken port 25.
	if ! port_free 25 && ! [ -n "${PORT25_BUSY_BEFORE:-}" ]; then
		log "port 25 is in use after starting the private Postfix; stopping"
		return 1
	fi
}
postfix_count() {
	local n=0
	[ -d "$WORK/postfix/mail/example.test/bench/new" ] &&
		n=$(find "$WORK/postfix/mail/example.test/bench/new" -type f | wc -l)
	echo "$n"
}
postfix_run() {
	local t1
	find "$WORK/postfix/mail" -type f -delete 2>/dev/null
	send_load "$PF_PORT" "$WORK/source-postfix.out" || { log "smtp-source to postfix failed: $(tail -3 "$WORK/source-postfix.out")"; return 1; }
	t1=$(wait_count postfix_count "$M" "$SEND_TIMEOUT") || return 1
	rate "$ELAPSED_START" "$t1" "$M"
}

# --------------------------------------------------------------------- Tern
tern_setup() {
	local d=$WORK/tern off err
	[ -x "$TERN_BIN" ] || { log "$TERN_BIN missing (run make)"; return 1; }
	# one offset must leave every listener port (25+off, 587+off, ...) free
	for _ in $(seq 50); do
		off=$((20000 + RANDOM % 11000)); err=0
		for p in 25 587 465 143 993 110 995 80 443; do port_free $((p + off)) || err=1; done
		[ $err = 0 ] && break
	done
	TERN_PORT=$((25 + off))
	timeout 60 "$TERN_BIN" init "$d" --hostname bench-tern.example.test --bind 127.0.0.1 \
		--port-offset "$off" >"$WORK/tern-init.out" 2>&1 ||
		{ log "tern init failed: $(tail -5 "$WORK/tern-init.out")"; return 1; }
	TERN_CONF=$d/tern.conf
	# SPF (on by default) would ask this machine's resolver for each message;
	# the Postfix side checks nothing, so Tern does not either here
	printf '\nmailauth = {\n  spf = false;\n};\n' >>"$TERN_CONF"
	timeout 30 "$TERN_BIN" -c "$TERN_CONF" domain add example.test >>"$WORK/tern-init.out" 2>&1 &&
	echo "bench-password-$RANDOM$RANDOM" | timeout 30 "$TERN_BIN" -c "$TERN_CONF" user add "$RCPT" \
		>>"$WORK/tern-init.out" 2>&1 ||
		{ log "tern domain/user add failed: $(tail -5 "$WORK/tern-init.out")"; return 1; }
	"$TERN_BIN" -c "$TERN_CONF" serve >"$WORK/tern.log" 2>&1 &
	PIDS+=($!)
	TERN_PID=$!
	wait_listen "$TERN_PORT" 15 || { log "tern did not listen on $TERN_PORT: $(tail -5 "$WORK/tern.log")"; return 1; }
	# the port could belong to someone else who took it first: ours must be up
	kill -0 "$TERN_PID" 2>/dev/null || { log "tern exited: $(tail -5 "$WORK/tern.log")"; return 1; }
	TERN_DATA=$(tern_data_dir)
	[ -n "$TERN_DATA" ] || { log "cannot find tern's data folder"; return 1; }
}
# The data folder named in tern.conf (data_dir, relative to the config file).
tern_data_dir() {
	$PY - "$TERN_CONF" <<'EOF'
import os, re, sys
conf = sys.argv[1]
text = open(conf).read()
m = re.search(r'^\s*data_dir\s*[=:]\s*"([^"]*)"', text, re.M)
d = m.group(1) if m else "data"
print(os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(conf)), d)))
EOF
}
# Messages stored for the benchmark user, read from the store's index
# (read-only, so it never competes with the server's writer).
tern_count() {
	timeout 10 $PY - "$TERN_DATA" "$RCPT" <<'EOF'
import glob, os, sqlite3, sys
data, rcpt = sys.argv[1], sys.argv[2]
for db in sorted(glob.glob(os.path.join(data, "*.db")) + glob.glob(os.path.join(data, "*", "*.db"))):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        tables = {r[0] for r in c.execute("select name from sqlite_master where type='table'")}
        if "messages" in tables:
            try:
                n = c.execute("select count(*) from messages m join mailboxes b on m.mailbox_id = b.id"
                              " join users u on b.user_id = u.id where u.address = ?", (rcpt,)).fetchone()[0]
            except sqlite3.Error:
                n = c.execute("select count(*) from messages").fetchone()[0]
            print(n)
            sys.exit(0)
    except sqlite3.Error:
        continue
print(0)
EOF
}
tern_run() {
	local base t1
	base=$(tern_count); base=${base:-0}
	send_load "$TERN_PORT" "$WORK/source-tern.out" || {
		log "smtp-source to tern failed: $(tail -3 "$WORK/source-tern.out")"
		log "tern's log ends: $(tail -5 "$WORK/tern.log")"
		return 1
	}
	# every 250 came after the commit, so this should hold at once
	t1=$(wait_count tern_count $((base + M)) "$COUNT_TIMEOUT") || return 1
	rate "$ELAPSED_START" "$t1" "$M"
}

# --------------------------------------------------------------------- main
# Quick mode runs inside `make check`: whatever hangs, give up after 22 s
# (stopping the current child, so that the EXIT trap cleans up at once).
if [ $QUICK = 1 ]; then
	# short sleeps, so that the cleanup's kill ends the watchdog at once
	( trap 'exit 0' TERM
	  for _ in $(seq 220); do sleep 0.1; done
	  echo "bench: quick mode exceeded 22 s, giving up" >&2
	  kill -TERM $$; pkill -TERM -P $$ ) &
	WATCHDOG=$!
fi
port_free 25 || PORT25_BUSY_BEFORE=1
mode=full; [ $QUICK = 1 ] && mode=quick
log "$mode: $M messages of $SIZE bytes over $S sessions, $RUNS run(s) per receiver"
declare -A RESULT
for sys in $SYSTEMS; do
	if ! "${sys}_setup"; then
		FAILED+=("$sys"); RESULT[$sys]=0; continue
	fi
	rates=()
	for r in $(seq "$RUNS"); do
		if x=$("${sys}_run"); then
			rates+=("$x"); log "$sys run $r: $x msg/s"
		else
			FAILED+=("$sys"); rates=(); break
		fi
	done
	if [ ${#rates[@]} -gt 0 ]; then RESULT[$sys]=$(median "${rates[@]}"); else RESULT[$sys]=0; fi
done

ratio() { $PY -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b) if b>0 else 'nan')" "$1" "$2"; }
for sys in $SYSTEMS; do echo "${sys}_msgs_per_s=${RESULT[$sys]}"; done
[ -n "${RESULT[tern]:-}" ] && [ -n "${RESULT[postfix]:-}" ] && echo "ratio_tern_postfix=$(ratio "${RESULT[tern]}" "${RESULT[postfix]}")"
[ -n "${RESULT[tern]:-}" ] && [ -n "${RESULT[sink]:-}" ] && echo "ratio_tern_sink=$(ratio "${RESULT[tern]}" "${RESULT[sink]}")"
if [ ${#FAILED[@]} -gt 0 ]; then
	echo "bench: FAILED: ${FAILED[*]} (did not start, or did not receive every message)" >&2
	exit 1
fi
exit 0
