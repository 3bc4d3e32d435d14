#!/bin/bash
# Runs INSIDE a multi-node run-vm guest: the series' KVM selftest guest_memfd_numa_balancing_test,
# with NUMA balancing on and a 100 ms scan period.  A vCPU keeps writing guest_memfd memory on the
# remote node while anonymous memory of the same process is balanced: NUMA balancing must migrate
# anonymous pages and never zap the guest_memfd memory from KVM's page tables (VM stat
# mmu_notifier_prot_flush stays 0).  Fails on a skip (one node, no guest_memfd mmap) or if the
# test did not print its results.
#
# usage: guest-memfd-numa-balancing.sh [SELFTESTS_DIR [TEST_ARGS...]]
#   TEST_ARGS go to the test, e.g. -n 20 (NUMA scans to wait for, default 5).
#   SELFTESTS_DIR ('' or absent) defaults to ${GMEM_CACHE_DIR:-/var/cache/gmem}/build/FLAVOUR/kselftest/kvm,
#   what `kernel/build.sh [--debug] --selftests` builds, FLAVOUR matching the running kernel
#   (gmem-debug for a 7.3.x-gmem-debug kernel, else gmem).
set -u

dir=${1:-}
shift || true
# shellcheck source=SCRIPTDIR/selftest-lib.sh
. "$(dirname "$0")/selftest-lib.sh"
vm_selftest_setup guest-memfd-numa-balancing guest_memfd_numa_balancing_test "$dir" 2
knobs=/sys/kernel/debug/sched/numa_balancing
[ -d "$knobs" ] || fail "$knobs missing (CONFIG_NUMA_BALANCING, debugfs)"

# NUMA balancing on, scanning every 100 ms (the defaults are 1 s to 60 s); the first scan of
# the process and of a new VMA after 100 ms instead of 1 s.
echo 1 >/proc/sys/kernel/numa_balancing || fail "cannot enable kernel.numa_balancing"
for knob in scan_delay_ms=100 scan_period_min_ms=100 scan_period_max_ms=100; do
	echo "${knob#*=}" >"$knobs/${knob%%=*}" || fail "cannot set $knobs/${knob%%=*}"
done
echo "guest-memfd-numa-balancing: kernel $(uname -r), $nodes NUMA nodes," \
	"kernel.numa_balancing=$(cat /proc/sys/kernel/numa_balancing)," \
	"scan period $(cat "$knobs/scan_period_min_ms")-$(cat "$knobs/scan_period_max_ms") ms"

out=$(mktemp /tmp/guest_memfd_numa_balancing_test.XXXXXX)
"$test_bin" "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "guest-memfd-numa-balancing: guest_memfd_numa_balancing_test exited with $rc"
[ "$rc" = 0 ] || fail "exit status $rc (4 = skipped)"

grep -Eq '^anonymous memory: numa_pages_migrated \+[1-9]' "$out" ||
	fail "no migration of anonymous memory by NUMA balancing reported"
grep -Eq '^guest_memfd memory: mmu_notifier_prot_flush \+0,' "$out" ||
	fail "guest_memfd memory was zapped by protection changes"
echo "guest-memfd-numa-balancing: PASS (anonymous memory balanced, guest_memfd memory never" \
	"zapped by NUMA balancing)"
