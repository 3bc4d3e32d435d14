#!/bin/bash
# Runs INSIDE a run-vm guest: demand paging from an armed guest_memfd (the kernel series'
# guest_memfd_demand_paging_test) against upstream demand_paging_test, all in this one guest, for
# 1 and 2 vCPUs: pages per second, per-fault latency (p50/p99, as the guest sees it) and ratios.
#   no-tracking   guest_memfd, not armed: pages zero-filled on first touch (the no-fault rate)
#   wait          armed, one handler thread serves the fault fd for all vCPUs
#   exit          armed, KVM_CAP_GUEST_MEMFD_MISSING exit mode, each vCPU thread installs
#   wait-run16    wait mode, each fault installs a run of 16 pages from the faulting one on
#   exit-run16    exit mode, the same runs (one KVM_GMEM_INSTALL and one exit per 16 pages)
#   dpt           demand_paging_test without userfaultfd (anonymous memory)
#   dpt-MISSING   demand_paging_test -u MISSING (anonymous memory, one uffd handler per vCPU)
# Every configuration runs ROUNDS times, interleaved (the host is noisy); the table shows medians.
# Prints a table; never judges the numbers.
#
# usage: guest-memfd-missing.sh [SELFTESTS_DIR [BYTES_PER_VCPU [ROUNDS]]]   (default 8M, 5)
set -u
dir=${1:-}
bytes=${2:-8M}
rounds=${3:-5}
# shellcheck source=SCRIPTDIR/../vm/selftest-lib.sh
. "$(dirname "$0")/../vm/selftest-lib.sh"
vm_selftest_setup guest-memfd-missing-bench guest_memfd_demand_paging_test "$dir" 1
bindir=$(dirname "$test_bin")
[ -x "$bindir/demand_paging_test" ] || fail "$bindir/demand_paging_test missing"

declare -A rate p50 p99	# space-separated values, one per round
# ours MODE VCPUS ARGS...: one run of guest_memfd_demand_paging_test.
ours() {
	local mode=$1 v=$2 line
	shift 2
	line=$("$test_bin" -v "$v" -b "$bytes" "$@" 2>&1 | grep '^mode ') || fail "$mode, $v vCPUs: no result"
	echo "$line"
	rate[$mode,$v]+=" $(sed -n 's/.*: \([0-9]*\) pages\/s.*/\1/p' <<<"$line")"
	p50[$mode,$v]+=" $(sed -n 's/.*p50 \([0-9.]*\) us.*/\1/p' <<<"$line")"
	p99[$mode,$v]+=" $(sed -n 's/.*p99 \([0-9.]*\) us.*/\1/p' <<<"$line")"
}
declare -A failed	# upstream runs that failed, per configuration
# dpt MODE VCPUS ARGS...: one run of upstream demand_paging_test.  A failed run is reported and
# counted (the table says how many), not fatal: it is not the code under test.
dpt() {
	local mode=$1 v=$2 out
	shift 2
	if ! out=$("$bindir/demand_paging_test" -v "$v" -b "$bytes" "$@" 2>&1); then
		echo "demand_paging_test -v $v $*: FAILED: $(grep -m1 -a 'exit_reason\|Assertion' <<<"$out")"
		failed[$mode,$v]=$((${failed[$mode,$v]:-0} + 1))
		return
	fi
	local r
	r=$(sed -n 's/^Overall demand paging rate:\t*\([0-9]*\).*/\1/p' <<<"$out")
	echo "demand_paging_test -v $v $*: $r pages/s"
	rate[$mode,$v]+=" $r"
}
# median VALUES...: the median of the numbers given ('-' for none).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "guest-memfd-missing-bench: kernel $(uname -r), $(nproc) CPUs, $bytes per vCPU, $rounds rounds"
for ((round = 1; round <= rounds; round++)); do
	for v in 1 2; do
		ours no-tracking "$v" -z
		ours wait "$v"
		ours exit "$v" -e
		ours wait-run16 "$v" -n 16
		ours exit-run16 "$v" -e -n 16
		dpt dpt "$v"
		dpt dpt-MISSING "$v" -u MISSING
	done
done
declare -A med
for key in "${!rate[@]}"; do
	# shellcheck disable=SC2086
	med[$key]=$(median ${rate[$key]})
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\nmedians of %d rounds\n' "$rounds"
for key in "${!failed[@]}"; do
	echo "${key%,*}, ${key#*,} vCPUs: ${failed[$key]} of $rounds runs failed (not in the median)"
done
printf '%-12s %6s %12s %9s %9s %10s %12s\n' mode vCPUs pages/s p50_us p99_us vs_MISSING vs_no-fault
for v in 1 2; do
	for mode in no-tracking wait exit wait-run16 exit-run16 dpt dpt-MISSING; do
		# shellcheck disable=SC2086
		printf '%-12s %6s %12s %9s %9s %10s %12s\n' "$mode" "$v" "${med[$mode,$v]}" \
			"$(median ${p50[$mode,$v]:-})" "$(median ${p99[$mode,$v]:-})" \
			"$(ratio "${med[$mode,$v]}" "${med[dpt-MISSING,$v]}")" \
			"$(ratio "${med[$mode,$v]}" "${med[no-tracking,$v]}")"
	done
done
