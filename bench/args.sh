# Sourced first by every bench/*/run.sh, with the script's arguments:
# sets QUICK=1 for --quick, prints the script's help (its leading comment,
# up to `set -u`) for -h/--help, refuses anything else.
QUICK=0
for a in "$@"; do
	case $a in
	--quick) QUICK=1 ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
	esac
done
