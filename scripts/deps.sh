#!/usr/bin/env bash
# Installs (or, when not root, lists the command to install) the Debian 12
# packages Tern needs to build, test and benchmark. Idempotent.
#   scripts/deps.sh          install what is missing (root), else print the command
#   scripts/deps.sh --check  exit 1 if anything is missing, printing the command
set -u
PKGS=(
  # build
  gcc make pkg-config clang libclang-rt-14-dev
  libssl-dev libevent-dev libsqlite3-dev libconfig-dev libcrypt-dev libargon2-dev
  libunistring-dev zlib1g-dev libunbound-dev libcurl4-openssl-dev libjansson-dev libpsl-dev publicsuffix libidn2-dev
  # libunbound.pc names hogweed and nettle: without their .pc files
  # `pkg-config --cflags` fails as a whole and the build loses every -I flag
  nettle-dev
  libxml2-dev
  libzip-dev
  # the DNSSEC root trust anchor for the resolver's system mode
  dns-root-data
  # tests and tools the tests drive
  openssl ca-certificates curl python3 python3-pytest python3-yaml python3-dkim python3-authres swaks libnet-ssleay-perl
  fail2ban procps iproute2
  fetchmail
  # the test DNS (tests/harness/testdns.py): an authoritative server and
  # zone signing for DNSSEC/DANE cases
  nsd ldnsutils
  isync
  # benchmark peers (smtp-source, smtp-sink, a private Postfix; a private
  # Dovecot for bench/pop3 and bench/imap)
  postfix dovecot-pop3d dovecot-imapd
  # webmail end to end (tests/integration/test_roundcube.py): Roundcube with
  # SQLite under PHP's built-in server (php8.2-cgi satisfies php8.2's
  # dependency without pulling apache2), driven by headless Chromium
  roundcube-core roundcube-sqlite3 php-cli php8.2-cgi php-sqlite3 php-mbstring
  php-intl php-xml chromium chromium-driver python3-selenium
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ] || [ "${1:-}" = "--check" ]; then
  echo "Tern needs Debian packages that are missing. Run as root:" >&2
  echo "  apt-get update && $cmd" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix and Dovecot are only benchmark peers: keep their daemons from
# starting on ports 25/110/143/993/995 while they install (policy-rc.d 101 = "do not
# start services").
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
apt-get update -qq && apt-get install -y -q --no-install-recommends "${missing[@]}"
rc=$?
[ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
# Never leave a system MTA listening on the ports Tern and its tests use.
if command -v postfix >/dev/null 2>&1; then postfix stop >/dev/null 2>&1 || true; fi
# The system Dovecot, if a start slipped through (bench/pop3 runs its own).
if [ -s /run/dovecot/master.pid ] && command -v doveadm >/dev/null 2>&1; then
  doveadm -c /etc/dovecot/dovecot.conf stop >/dev/null 2>&1 || true
fi
exit $rc
