#!/bin/bash
# Runs INSIDE a run-vm guest: checks the runner gives what the VM tier relies on.
#
# usage: smoke.sh EXPECTED_NODES
#   the -gmem kernel, EXPECTED_NODES online NUMA nodes of pairwise different sizes (run-vm
#   makes them unequal for more than 2 nodes), /dev/kvm (nested SVM), a writable root
#   overlay, and the caller's cwd.
set -u
want_nodes=${1:?usage: smoke.sh EXPECTED_NODES}
bad=0
fail() { echo "smoke: FAIL: $*"; bad=1; }

release=$(uname -r)
echo "smoke: uname -r: $release"
case $release in *-gmem*) ;; *) fail "kernel release $release lacks the -gmem localversion" ;; esac

nodes=$(cat /sys/devices/system/node/online)
echo "smoke: online nodes: $nodes"
numactl -H
count=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' | wc -l)
[ "$count" = "$want_nodes" ] || fail "$count NUMA nodes, expected $want_nodes"
if [ "$want_nodes" -gt 2 ]; then
	sizes=$(awk '/MemTotal/ { print $4 }' /sys/devices/system/node/node*/meminfo)
	[ "$(sort -u <<<"$sizes" | wc -l)" = "$want_nodes" ] ||
		fail "node sizes are not all different: $(tr "\n" " " <<<"$sizes")"
fi

[ -c /dev/kvm ] || fail "no /dev/kvm"
grep -qw svm /proc/cpuinfo || fail "no svm flag in /proc/cpuinfo"

probe=$PWD/.gmem-vm-smoke.$$
if echo ok >"$probe" && rm "$probe"; then
	echo "smoke: cwd $PWD writable"
else
	fail "cannot write to the cwd $PWD through the overlay"
fi
exit $bad
