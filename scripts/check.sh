#!/usr/bin/env bash
# Runs every test suite and ends with one line: "N passed, N failed".
#   unit tests       build/tests/test-*         (one line each: "unit X: N passed, N failed")
#   fuzz replay      build/replay/fuzz-* over tests/fuzz/corpus/<name>/  (1 test each)
#   integration      tests/integration/test_*.py under Debian's pytest, against real servers
#   bench quick      bench/*/run.sh --quick     (1 test each: the benchmark still runs)
# BUILD selects the build folder (build, or build-asan for `make asan`).
# ONLY=unit|replay|integration|bench runs one kind.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export TERN_BIN=${TERN_BIN:-$PWD/$BUILD/tern}
PY=/usr/bin/python3
passed=0; failed=0
log=$(mktemp -d /tmp/tern-check.XXXXXX)

count() { # add "N passed, N failed" figures found in a line
  local p f
  p=$(sed -n 's/.*[^0-9]\([0-9][0-9]*\) passed.*/\1/p; s/^\([0-9][0-9]*\) passed.*/\1/p' <<<"$1" | head -1)
  f=$(sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p' <<<"$1" | head -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
}
want() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

if want unit; then
  for t in "$BUILD"/tests/test-*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>"$log/$(basename "$t").err"); rc=$?
    line=$(grep '^unit ' <<<"$out" | tail -1)
    if [ -z "$line" ]; then
      echo "unit $(basename "$t"): crashed (exit $rc)"; cat "$log/$(basename "$t").err"; failed=$((failed + 1))
    else
      echo "$line"; count "$line"
      [ $rc -ne 0 ] && cat "$log/$(basename "$t").err"
    fi
  done
fi

if want replay; then
  rp=0; rf=0
  for t in "$BUILD"/replay/fuzz-*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    extra=()
    # the shared MIME vectors are seeds too, read in place (never copied here)
    shared=${TERN_SHARED_TESTDATA:-../shared/testdata}
    [ "$n" = fuzz-mime ] && [ -d "$shared/mime/mail-parser" ] &&
      extra=("$shared/mime/mail-parser/malformed" "$shared/mime/mail-parser/rfc")
    if "$t" "tests/fuzz/corpus/$n" "${extra[@]}" >"$log/$n.out" 2>&1; then rp=$((rp + 1))
    else rf=$((rf + 1)); echo "fuzz replay $n FAILED:"; tail -20 "$log/$n.out"; fi
  done
  echo "fuzz corpus replay: $rp passed, $rf failed"
  passed=$((passed + rp)); failed=$((failed + rf))
fi

if want integration && ls tests/integration/test_*.py >/dev/null 2>&1; then
  args=(-q -p no:cacheprovider -o console_output_style=classic)
  [ -n "${PYTEST_ARGS:-}" ] && args+=($PYTEST_ARGS)
  $PY -m pytest "${args[@]}" tests/integration 2>&1 | tee "$log/pytest.out" | grep -v '^\.*$' | tail -40
  line=$(grep -E '[0-9]+ (passed|failed)' "$log/pytest.out" | tail -1)
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+'); f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
  e=$(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+')
  [ -z "$line" ] && f=1
  echo "integration: ${p:-0} passed, $(( ${f:-0} + ${e:-0} )) failed"
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
fi

if want bench && [ -z "${TERN_SANITIZED:-}" ]; then
  for b in bench/*/run.sh; do
    [ -x "$b" ] || continue
    if "$b" --quick >"$log/bench.out" 2>&1; then passed=$((passed + 1)); echo "bench $(dirname "$b") quick: ok"
    else failed=$((failed + 1)); echo "bench $(dirname "$b") quick: FAILED"; tail -20 "$log/bench.out"; fi
  done
fi

rm -rf "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
