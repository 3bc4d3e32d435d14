#!/bin/bash
# Runs INSIDE a multi-node run-vm guest: the series' KVM selftest
# x86/numa_aware_page_tables_test (KVM_CAP_NUMA_AWARE_PAGE_TABLES), failing unless every case
# ran and passed: a skip (no capability, one node, no THP, no guest_memfd mmap, no CPU on the
# memory's node, kvm.nx_huge_pages not writable) fails here, so the vm suite cannot pass
# without checking the placement.
#
# usage: numa-aware-page-tables.sh [--movable] [--gigantic] [SELFTESTS_DIR]
#   --movable      the guest must have a movable-only node (run-vm --movable-mem) and the
#                  test's case for it must pass; without it, that case must pass if the guest
#                  has such a node and may skip otherwise
#   --gigantic     the guest must have a 1GiB hugetlb page (run-vm --append 'hugepagesz=1G
#                  hugepages=1:1') and the 1GiB split cases must pass; without it, they must
#                  pass if the guest has such a page and may skip otherwise
# The fallback case (the memory's node drained into 2MiB hugetlb pages) must always pass:
# both kernel configurations have hugetlbfs.
#   SELFTESTS_DIR  defaults to ${GMEM_CACHE_DIR:-/var/cache/gmem}/build/FLAVOUR/kselftest/kvm,
#                  what `kernel/build.sh [--debug] --selftests` builds, FLAVOUR matching the
#                  running kernel (gmem-debug for a 7.3.x-gmem-debug kernel, else gmem).
set -u

require_movable=0
require_gigantic=0
while [ $# -gt 0 ]; do
	case $1 in
	--movable) require_movable=1 ;;
	--gigantic) require_gigantic=1 ;;
	*) break ;;
	esac
	shift
done
# shellcheck source=SCRIPTDIR/selftest-lib.sh
. "$(dirname "$0")/selftest-lib.sh"
vm_selftest_setup numa-aware-page-tables x86/numa_aware_page_tables_test "${1:-}" 2
tdp_mmu=$(cat /sys/module/kvm/parameters/tdp_mmu 2>/dev/null)
[ "$tdp_mmu" = Y ] || fail "the TDP MMU is not in use (kvm.tdp_mmu=${tdp_mmu:-missing})"
has_memory=$(cat /sys/devices/system/node/has_memory)
has_normal=$(cat /sys/devices/system/node/has_normal_memory)
movable=0
[ "$has_memory" != "$has_normal" ] && movable=1
if [ $require_movable = 1 ] && [ $movable = 0 ]; then
	fail "no movable-only node (nodes with memory: $has_memory, with normal memory: $has_normal)"
fi
gigantic=$(cat /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages 2>/dev/null)
gigantic=${gigantic:-0}
if [ $require_gigantic = 1 ] && [ "$gigantic" -lt 1 ]; then
	fail "no 1GiB hugetlb page (boot with hugepagesz=1G hugepages=NODE:1)"
fi
[ -d /sys/kernel/mm/hugepages/hugepages-2048kB ] ||
	fail "no 2MiB hugetlb pool (CONFIG_HUGETLBFS missing?): the fallback case needs it"
echo "numa-aware-page-tables: kernel $(uname -r), $nodes NUMA nodes (memory $has_memory," \
	"normal memory $has_normal), TDP MMU on, $gigantic 1GiB hugetlb page(s)"
eager_before=$(cat /sys/module/kvm/parameters/eager_page_split)
nx_before=$(cat /sys/module/kvm/parameters/nx_huge_pages)

out=$(mktemp /tmp/numa_aware_page_tables_test.XXXXXX)
"$test_bin" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "numa-aware-page-tables: numa_aware_page_tables_test exited with $rc"
[ "$rc" = 0 ] || fail "exit status $rc (4 = skipped)"

eager_after=$(cat /sys/module/kvm/parameters/eager_page_split)
[ "$eager_after" = "$eager_before" ] ||
	fail "kvm.eager_page_split was $eager_before before the test and is $eager_after after it"
nx_after=$(cat /sys/module/kvm/parameters/nx_huge_pages)
[ "$nx_after" = "$nx_before" ] ||
	fail "kvm.nx_huge_pages was $nx_before before the test and is $nx_after after it"

grep -q '^not ok' "$out" && fail "a case failed"
cases=("KVM_ENABLE_CAP: EINVAL with args[0] != 0 or after vCPU creation")
for case in "fault on anonymous memory" "fault on guest_memfd" "KVM_PRE_FAULT_MEMORY" \
	    "eager split" "on-demand split" "KVM_CLEAR_DIRTY_LOG split" "NX huge page split" \
	    "two vCPUs on two nodes"; do
	cases+=("$case, capability on" "$case, capability off")
done
if [ "$gigantic" -ge 1 ]; then
	for case in "1GiB eager split" "1GiB on-demand split"; do
		cases+=("$case, capability on" "$case, capability off")
	done
fi
cases+=("interleaved memory, capability on" "fault after an MMU reset, capability on"
	"fallback from a full node, capability on")
[ $movable = 1 ] && cases+=("memory on a movable-only node, capability on")
for case in "${cases[@]}"; do
	awk -v c="$case" 'sub(/^ok [0-9]+ /, "") && $0 == c { found = 1 } END { exit !found }' "$out" ||
		fail "case '$case' did not run and pass"
done
# Only the cases this boot does not provide may skip.
allowed='^$'
[ $movable = 0 ] && allowed="$allowed|# SKIP memory on a movable-only node"
[ "$gigantic" -lt 1 ] && allowed="$allowed|# SKIP 1GiB (eager|on-demand) split"
grep '# SKIP' "$out" | grep -Ev "$allowed" && fail "cases were skipped"
echo "numa-aware-page-tables: PASS (${#cases[@]} cases: faults on anonymous memory and guest_memfd," \
	"KVM_PRE_FAULT_MEMORY, eager, on-demand, KVM_CLEAR_DIRTY_LOG and NX splits$(
	[ "$gigantic" -ge 1 ] && echo ", 1GiB eager and on-demand splits"), two vCPUs on two" \
	"nodes, capability on and off; interleaved memory, a fault after an MMU reset, fallback from a full node$(
	[ $movable = 1 ] && echo ", a movable-only node"))"
