#!/usr/bin/env bash
# `make demo`: a throwaway Tern server on 127.0.0.1 to try things against.
#
# Creates demo/ (gitignored) on the first run: a config from `tern init`
# with every port moved up by 10000, AUTH without TLS allowed from
# localhost, the domain example.test and the user demo@example.test with a
# random password kept in demo/password.txt.  Later runs reuse all of it, so
# the password stays the same; delete demo/ to start over.  Then prints how
# to connect and runs the server in the foreground (Ctrl-C stops it).
set -eu
cd "$(dirname "$0")/.."
TERN=${TERN_BIN:-build/tern}
DIR=demo
CONF=$DIR/tern.conf
DOMAIN=example.test
USER=demo@$DOMAIN
OFFSET=10000

[ -x "$TERN" ] || { echo "demo: $TERN is missing; run make first" >&2; exit 1; }

if [ ! -f "$CONF" ]; then
	"$TERN" init "$DIR" --hostname mail.example.test --bind 127.0.0.1 --port-offset "$OFFSET"
	# Let clients on this machine try AUTH without STARTTLS (never do this
	# on a real server: the password would cross the network in clear).
	sed -i 's/^\([[:space:]]*plaintext_auth_loopback[[:space:]]*=[[:space:]]*\)false;/\1true;/' "$CONF"
	grep -q '^[[:space:]]*plaintext_auth_loopback[[:space:]]*=[[:space:]]*true;' "$CONF" || {
		echo "demo: could not enable smtp.plaintext_auth_loopback in $CONF" >&2
		exit 1
	}
	# The demo's domains exist in no DNS: SPF and DMARC lookups for the
	# test senders would only time out (451), so the demo does not check
	# them; a real server keeps mailauth on (docs/spf.md, docs/dmarc.md).
	printf 'mailauth = {\n  spf = false;\n  dmarc = false;\n};\n' >>"$CONF"
fi

NEW_PASSWORD=0
if [ ! -s "$DIR/password.txt" ]; then
	# 18 random bytes -> 24 characters of base64 without +, / or =
	(umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' 'xy' | tr -d '=\n' >"$DIR/password.txt")
	NEW_PASSWORD=1
fi
PASSWORD=$(cat "$DIR/password.txt")

# Idempotent: an existing domain or user is fine; anything else is an error.
add() { # what, command...
	local what=$1 out
	shift
	if ! out=$("$@" 2>&1); then
		case $out in
		*xist*) ;;   # "already exists"
		*) echo "demo: $what failed: $out" >&2; exit 1 ;;
		esac
	fi
}
add "domain add" "$TERN" -c "$CONF" domain add "$DOMAIN"
if ! "$TERN" -c "$CONF" user list 2>/dev/null | grep -qiF "$USER"; then
	add "user add" "$TERN" -c "$CONF" user add "$USER" <<<"$PASSWORD"
elif [ $NEW_PASSWORD = 1 ]; then
	# the user exists but password.txt was lost: make them agree again
	"$TERN" -c "$CONF" user passwd "$USER" <<<"$PASSWORD" >/dev/null
fi

DATA=$(sed -n 's/^[[:space:]]*data_dir[[:space:]]*=[[:space:]]*"\(.*\)";.*/\1/p' "$CONF" | head -1)
case ${DATA:-data} in /*) ;; *) DATA=$PWD/$DIR/${DATA:-data} ;; esac
SMTP=$((25 + OFFSET)); SUB=$((587 + OFFSET)); SUBS=$((465 + OFFSET))
POP3=$((110 + OFFSET)); POP3S=$((995 + OFFSET))
IMAP=$((143 + OFFSET)); IMAPS=$((993 + OFFSET))
HTTP=$((80 + OFFSET)); HTTPS=$((443 + OFFSET))

cat <<EOF

  Tern demo server (config $CONF)

  SMTP (MX)          127.0.0.1:$SMTP   no login; mail for @$DOMAIN only
  submission         127.0.0.1:$SUB   STARTTLS, then AUTH
  submission (TLS)   127.0.0.1:$SUBS   implicit TLS
  POP3               127.0.0.1:$POP3   STLS, then USER/PASS or AUTH
  POP3 (TLS)         127.0.0.1:$POP3S   implicit TLS
  IMAP               127.0.0.1:$IMAP   STARTTLS, then LOGIN or AUTHENTICATE
  IMAP (TLS)         127.0.0.1:$IMAPS   implicit TLS
  HTTP               127.0.0.1:$HTTP   /health; everything else redirects to HTTPS
  HTTPS              127.0.0.1:$HTTPS   MTA-STS policy of $DOMAIN, /health
  user               $USER
  password           $PASSWORD

  The certificate is self-signed: clients must be told not to verify it.
  Send a test message as a stranger would (port 25 role):
    swaks --server 127.0.0.1:$SMTP --from someone@example.org --to $USER

  Or log in and send as the demo user (submission, STARTTLS):
    swaks --server 127.0.0.1:$SUB --tls --auth PLAIN \\
          --auth-user $USER --auth-password '$PASSWORD' \\
          --from $USER --to $USER
  (This demo also allows AUTH without TLS from this machine: drop --tls.)

  Read the mail with a mail client (Thunderbird, mutt, ...) set up for IMAP
  on 127.0.0.1:$IMAPS or POP3 on 127.0.0.1:$POP3S (SSL/TLS, user and password
  above), or look with curl:
    curl -k imaps://127.0.0.1:$IMAPS/INBOX -u '$USER:$PASSWORD'
    curl -k pop3s://127.0.0.1:$POP3S/ -u '$USER:$PASSWORD'

  The MTA-STS policy other servers would fetch for $DOMAIN (docs/http.md):
    curl -k --resolve mta-sts.$DOMAIN:$HTTPS:127.0.0.1 \\
         https://mta-sts.$DOMAIN:$HTTPS/.well-known/mta-sts.txt
  and the health check:  curl http://127.0.0.1:$HTTP/health

  Stored messages land under $DATA/, one file per copy
  (layout: docs/storage.md):  find $DATA -type f
  Check the store with:  $TERN -c $CONF store verify

  Logs follow below.  Ctrl-C stops the server.

EOF
exec "$TERN" -c "$CONF" serve
