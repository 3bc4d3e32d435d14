#!/bin/bash
# Runs INSIDE a 2-node run-vm guest on the debug kernel, in one boot: the series'
# guest_memfd_unmapped_test (guest_memfd created by a VM fd holder, per-node counts and the VM
# check, the NUMA policy of private memory set without a mapping, pages charged to the VM
# creator's memory cgroup) and gmemd's end to end test-unmapped (a private region on a
# SW_PROTECTED VM created, bound to node 1, populated and measured by gmemd, charged to the
# VMM's cgroup; a memfd of another VM refused).  Mounts cgroup2 for both.  Fails on any skip.
#
# usage: guest-memfd-unmapped.sh SELFTESTS_DIR TEST_UNMAPPED
#   SELFTESTS_DIR ('' = what `kernel/build.sh [--debug] --selftests` built for the running
#   kernel's flavour); TEST_UNMAPPED: the build's tests/integration/test-unmapped.
set -u

dir=${1:-}
test_unmapped=${2:-}
# shellcheck source=SCRIPTDIR/selftest-lib.sh
. "$(dirname "$0")/selftest-lib.sh"
vm_selftest_setup guest-memfd-unmapped guest_memfd_unmapped_test "$dir" 2
[ -x "$test_unmapped" ] || fail "test-unmapped binary '$test_unmapped' missing (meson compile)"

if ! grep -q '^[^ ]* [^ ]* cgroup2 ' /proc/self/mounts; then
	mount -t cgroup2 none /sys/fs/cgroup || fail "cannot mount cgroup2 on /sys/fs/cgroup"
fi
grep -qw memory /sys/fs/cgroup/cgroup.controllers ||
	fail "no memory controller in cgroup2 (CONFIG_MEMCG)"
echo "guest-memfd-unmapped: kernel $(uname -r), $nodes NUMA nodes, cgroup2 controllers:" \
	"$(cat /sys/fs/cgroup/cgroup.controllers)"

out=$(mktemp /tmp/guest_memfd_unmapped_test.XXXXXX)
"$test_bin" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "guest-memfd-unmapped: guest_memfd_unmapped_test exited with $rc"
[ "$rc" = 0 ] || fail "guest_memfd_unmapped_test: exit status $rc (4 = skipped)"
grep -q 'SKIP' "$out" && fail "guest_memfd_unmapped_test skipped a case"
for case in create_by_holder info_counts policy memcg; do
	grep -Eq "^ok [0-9]+ $case\$" "$out" || fail "selftest case $case did not pass"
done

"$test_unmapped" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "guest-memfd-unmapped: test-unmapped exited with $rc"
[ "$rc" = 0 ] || fail "test-unmapped: exit status $rc"
grep -q '^kernel with the gmem series' "$out" || fail "test-unmapped did not run the gmem kernel's path"
grep -q '^ok: the pages gmemd populated are charged to the VMM' "$out" ||
	fail "test-unmapped did not check the charging"
echo "guest-memfd-unmapped: PASS (selftest: 4 cases; gmemd: private region placed, populated," \
	"measured and charged without a mapping, mismatched memfd refused)"
