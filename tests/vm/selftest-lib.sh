# shellcheck shell=bash
# Shared by the tests/vm/*.sh wrappers that run a KVM selftest inside a multi-node run-vm
# guest.  Sourced, never executed.

# fail MESSAGE...: the wrapper's verdict, named after it ($vm_wrapper); exits 1.
fail() {
	echo "$vm_wrapper: FAIL: $*"
	exit 1
}

# vm_selftest_setup WRAPPER RELPATH DIR MIN_NODES
# Sets vm_wrapper, test_bin (DIR/RELPATH; DIR '' means what `kernel/build.sh [--debug]
# --selftests` builds for the running kernel's flavour: gmem-debug for a 7.3.x-gmem-debug
# kernel, else gmem) and nodes, and fails unless the binary, /dev/kvm and MIN_NODES NUMA
# nodes are there.
vm_selftest_setup() {
	vm_wrapper=$1
	local rel=$2 dir=$3 min_nodes=$4 flavour
	if [ -z "$dir" ]; then
		case $(uname -r) in *-gmem-debug) flavour=gmem-debug ;; *) flavour=gmem ;; esac
		dir="${GMEM_CACHE_DIR:-/var/cache/gmem}/build/$flavour/kselftest/kvm"
	fi
	test_bin="$dir/$rel"
	[ -x "$test_bin" ] || fail "$test_bin missing; build it with kernel/build.sh --selftests"
	[ -c /dev/kvm ] || fail "no /dev/kvm in the guest (nested SVM not available?)"
	nodes=$(find /sys/devices/system/node -maxdepth 1 -name 'node[0-9]*' | wc -l)
	[ "$nodes" -ge "$min_nodes" ] ||
		fail "the guest has $nodes NUMA node(s); the test needs $min_nodes"
}
