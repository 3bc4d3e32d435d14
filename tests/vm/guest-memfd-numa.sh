#!/bin/bash
# Runs INSIDE a multi-node run-vm guest: the upstream KVM selftest guest_memfd_test, with proof
# that its multi-node parts (mbind, numa_allocation via move_pages) executed instead of
# returning early as they silently do on a single-node system.
#
# usage: guest-memfd-numa.sh [SELFTESTS_DIR]
#   SELFTESTS_DIR defaults to ${GMEM_CACHE_DIR:-/var/cache/gmem}/build/FLAVOUR/kselftest/kvm,
#   what `kernel/build.sh [--debug] --selftests` builds, FLAVOUR matching the running kernel
#   (gmem-debug for a 7.3.x-gmem-debug kernel, else gmem).
set -u

# shellcheck source=SCRIPTDIR/selftest-lib.sh
. "$(dirname "$0")/selftest-lib.sh"
vm_selftest_setup guest-memfd-numa guest_memfd_test "${1:-}" 2
echo "guest-memfd-numa: kernel $(uname -r), $nodes NUMA nodes, /dev/kvm present"

trace=$(mktemp /tmp/guest_memfd_test.strace.XXXXXX)
strace -f -qq -o "$trace" -e trace=mbind,move_pages,get_mempolicy "$test_bin"
rc=$?
echo "guest-memfd-numa: guest_memfd_test exited with $rc"
[ "$rc" = 0 ] || { tail -n 20 "$trace"; exit "$rc"; }

# test_numa_allocation: two move_pages() queries that find pages on node 1,1,0,0 and then
# 0,0,1,1; test_mbind: MPOL_INTERLEAVE/MPOL_BIND/MPOL_DEFAULT on the guest_memfd mapping.
grep -E '^[0-9]+ +(mbind|move_pages)\(' "$trace" | sed 's/^/  strace: /'
grep -Eq 'move_pages\(.*\[1, 1, 0, 0\], 0\) += 0' "$trace" ||
	fail "numa_allocation did not run (no move_pages() placing pages 0-1 on node 1)"
grep -Eq 'move_pages\(.*\[0, 0, 1, 1\], 0\) += 0' "$trace" ||
	fail "numa_allocation did not run (no move_pages() placing pages 2-3 on node 1)"
grep -Eq 'mbind\(.*MPOL_INTERLEAVE.*\) += 0' "$trace" ||
	fail "test_mbind did not run (no successful MPOL_INTERLEAVE mbind())"
echo "guest-memfd-numa: PASS (multi-node subtests executed)"
