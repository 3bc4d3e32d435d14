#!/bin/bash
# Runs INSIDE a multi-node run-vm guest: the series' KVM selftest
# x86/numa_aware_page_tables_test (KVM_CAP_NUMA_AWARE_PAGE_TABLES), failing unless every case
# ran: a skip (no capability, one node) or a case that was "not tested" (no THP, no guest_memfd
# mmap) fails here, so the vm suite cannot pass without checking the placement.
#
# usage: numa-aware-page-tables.sh [SELFTESTS_DIR]
#   SELFTESTS_DIR defaults to ${GMEM_CACHE_DIR:-/var/cache/gmem}/build/FLAVOUR/kselftest/kvm,
#   what `kernel/build.sh [--debug] --selftests` builds, FLAVOUR matching the running kernel
#   (gmem-debug for a 7.3.x-gmem-debug kernel, else gmem).
set -u

dir=${1:-}
if [ -z "$dir" ]; then
	case $(uname -r) in *-gmem-debug) flavour=gmem-debug ;; *) flavour=gmem ;; esac
	dir="${GMEM_CACHE_DIR:-/var/cache/gmem}/build/$flavour/kselftest/kvm"
fi
test_bin="$dir/x86/numa_aware_page_tables_test"

fail() {
	echo "numa-aware-page-tables: FAIL: $*"
	exit 1
}

[ -x "$test_bin" ] || fail "$test_bin missing; build it with kernel/build.sh --selftests"
[ -c /dev/kvm ] || fail "no /dev/kvm in the guest (nested SVM not available?)"
nodes=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' | wc -l)
[ "$nodes" -ge 2 ] || fail "the guest has $nodes NUMA node(s); the test needs 2"
tdp_mmu=$(cat /sys/module/kvm/parameters/tdp_mmu 2>/dev/null)
[ "$tdp_mmu" = Y ] || fail "the TDP MMU is not in use (kvm.tdp_mmu=${tdp_mmu:-missing})"
echo "numa-aware-page-tables: kernel $(uname -r), $nodes NUMA nodes, TDP MMU on"

out=$(mktemp /tmp/numa_aware_page_tables_test.XXXXXX)
"$test_bin" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "numa-aware-page-tables: numa_aware_page_tables_test exited with $rc"
[ "$rc" = 0 ] || fail "exit status $rc (4 = skipped)"

for case in "anonymous memory" "guest_memfd" "eager split" "on-demand split"; do
	for state in on off; do
		grep -q "^$case, NUMA-aware page tables $state: " "$out" ||
			fail "case '$case' with the capability $state did not run"
	done
done
echo "numa-aware-page-tables: PASS (faults on anonymous memory and guest_memfd, eager and" \
	"on-demand splits, capability on and off)"
