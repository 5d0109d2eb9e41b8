#!/usr/bin/env bash
# Runs the test suites (default: unit bpf e2e) and ends with one line
# "N passed, N failed". Every check prints "ok - name" or "not ok - name: why";
# a test program that exits non-zero without reporting a failure (a crash,
# a set -e abort) counts as one failure of its own.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit bpf e2e)
[ "$(id -u)" = 0 ] || { echo "make test: the bpf and e2e suites need root" >&2; exit 1; }

passed=0 failed=0
failures=()
run_one() { # name, command...
	local name=$1; shift
	local out rc p f
	echo "=== $name"
	out=$("$@" 2>&1); rc=$?
	printf '%s\n' "$out"
	p=$(grep -c '^ok - ' <<<"$out")
	f=$(grep -c '^not ok - ' <<<"$out")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1; echo "not ok - $name exited with status $rc"
	fi
	passed=$((passed + p)); failed=$((failed + f))
	[ "$f" = 0 ] || failures+=("$name")
}

for s in "${suites[@]}"; do
	case $s in
	unit|bpf)
		for t in "$BUILD"/test/"$s"/test_*; do
			[ -x "$t" ] || continue
			run_one "$s/$(basename "$t")" "$t"
		done ;;
	e2e|e2e:*)
		# e2e:NAME runs test/e2e/NAME.sh alone; a test that needs longer than
		# 600 s says so in a "# run-timeout: S" line.
		pattern=test_*; [ "$s" = e2e ] || pattern=${s#e2e:}
		for t in test/e2e/$pattern.sh; do
			[ -f "$t" ] || { echo "no e2e test $t" >&2; exit 2; }
			limit=$(sed -n 's/^# run-timeout: \([0-9]*\)$/\1/p' "$t" | head -1)
			run_one "e2e/$(basename "$t" .sh)" timeout "${limit:-600}" bash "$t"
		done ;;
	*) echo "unknown suite: $s" >&2; exit 2 ;;
	esac
done

[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
