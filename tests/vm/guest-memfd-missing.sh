#!/bin/bash
# Runs INSIDE a run-vm guest (meant for the debug kernel): the series' missing-page selftests for
# guest_memfd, and next to them upstream's userfaultfd demand paging, in one boot:
#   guest_memfd_missing_test          every case must report ok (none skipped);
#   guest_memfd_demand_paging_test    a handler thread serving 2 vCPUs (wait mode), then exit mode,
#                                     then exit mode installing runs of 16 pages;
#   demand_paging_test -u MISSING     (anonymous memory) and -u MINOR (shmem), 2 vCPUs.
# Fails on a non-zero exit, a skip, or a missing result line.
#
# usage: guest-memfd-missing.sh [SELFTESTS_DIR]
#   SELFTESTS_DIR ('' or absent) defaults to what `kernel/build.sh [--debug] --selftests` builds
#   for the running kernel's flavour (see selftest-lib.sh).
set -u

dir=${1:-}
# shellcheck source=SCRIPTDIR/selftest-lib.sh
. "$(dirname "$0")/selftest-lib.sh"
vm_selftest_setup guest-memfd-missing guest_memfd_missing_test "$dir" 1
bindir=$(dirname "$test_bin")
cases=19
echo "guest-memfd-missing: kernel $(uname -r), $nodes NUMA node(s)"

# run NAME CMD...: runs CMD, output to $out, fails the wrapper on a non-zero status.
run() {
	local name=$1
	shift
	out=$(mktemp "/tmp/$name.XXXXXX")
	"$@" 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	echo "guest-memfd-missing: $name exited with $rc"
	[ "$rc" = 0 ] || fail "$name: exit status $rc (4 = skipped)"
}

run guest_memfd_missing_test "$test_bin"
ok=$(grep -c '^ok [0-9]* ' "$out")
grep -q '^ok [0-9]* # SKIP' "$out" && fail "guest_memfd_missing_test skipped a case"
[ "$ok" = "$cases" ] || fail "guest_memfd_missing_test: $ok of $cases cases ok"

for mode in "" -e "-e -n 16"; do
	# shellcheck disable=SC2086 # $mode is a list of options
	run guest_memfd_demand_paging_test "$bindir/guest_memfd_demand_paging_test" -v 2 -b 2M $mode
	grep -Eq "^mode (wait|exit), 2 vCPUs, 1024 pages in" "$out" ||
		fail "guest_memfd_demand_paging_test $mode printed no result"
done

# Upstream's test (no guest_memfd in it) loses its nested guest with exit_reason=SHUTDOWN now and
# then in these TCG guests, on the pinned 7.3 without the series too (1 of 40 runs there; see
# docs/benchmarks.md): a run that dies exactly that way is run once more, and fails the second time.
dpt() {
	out=$(mktemp /tmp/demand_paging_test.XXXXXX)
	"$bindir/demand_paging_test" "$@" 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	if [ "$rc" != 0 ] && grep -q 'exit_reason=SHUTDOWN' "$out"; then
		echo "guest-memfd-missing: demand_paging_test $* lost its guest (SHUTDOWN); once more"
		run demand_paging_test "$bindir/demand_paging_test" "$@"
		return
	fi
	echo "guest-memfd-missing: demand_paging_test exited with $rc"
	[ "$rc" = 0 ] || fail "demand_paging_test: exit status $rc (4 = skipped)"
}

for uffd in MISSING MINOR; do
	backing=anonymous
	[ "$uffd" = MINOR ] && backing=shmem
	dpt -u "$uffd" -s "$backing" -v 2 -b 2M
	grep -q 'Overall demand paging rate' "$out" ||
		fail "demand_paging_test -u $uffd printed no rate"
done
echo "guest-memfd-missing: PASS ($cases cases, demand paging in wait and exit mode, upstream" \
	"demand_paging_test -u MISSING and -u MINOR)"
