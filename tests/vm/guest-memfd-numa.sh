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

dir=${1:-}
if [ -z "$dir" ]; then
	case $(uname -r) in *-gmem-debug) flavour=gmem-debug ;; *) flavour=gmem ;; esac
	dir="${GMEM_CACHE_DIR:-/var/cache/gmem}/build/$flavour/kselftest/kvm"
fi
test_bin="$dir/guest_memfd_test"

fail() {
	echo "guest-memfd-numa: FAIL: $*"
	exit 1
}

[ -x "$test_bin" ] || fail "$test_bin missing; build it with kernel/build.sh --selftests"
[ -c /dev/kvm ] || fail "no /dev/kvm in the guest (nested SVM not available?)"
nodes=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' | wc -l)
[ "$nodes" -ge 2 ] || fail "the guest has $nodes NUMA node(s); the multi-node subtests need 2"
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
