#!/bin/bash
# Runs INSIDE a run-vm guest on the gmem kernel: gmemd postcopy (issue 14) on the kernel's
# missing-page faults for guest_memfd (KVM_CAP_GUEST_MEMFD_MISSING). Two gmemd in the guest over
# loopback TCP; a VM on the destination computes a sum over pages it reads (and writes) in
# random order while the bulk stream is held back (waiting vCPU, then exit mode through libgmem's
# fast channel); the bulk stream, cut once, resumes; the tags match and the region ends as the
# source's plus the guest's writes; a source gone
# for good fails the waiting vCPU with EFAULT. Then the host tier's migration test (precopy,
# wrong token, corruption, truncation, oversize, version mismatch, source gone, resume).
#
# usage: migrate-postcopy.sh TEST-MIGRATE-POSTCOPY TEST-MIGRATE
set -u
vm_wrapper=migrate-postcopy
fail() {
	echo "$vm_wrapper: FAIL: $*"
	exit 1
}
[ $# -eq 2 ] || fail "usage: $0 TEST-MIGRATE-POSTCOPY TEST-MIGRATE"
[ -c /dev/kvm ] || fail "no /dev/kvm in the guest (nested SVM not available?)"
# Over loopback TCP when the guest kernel has TCP/IP (CONFIG_INET, kernel/config/gmem.config),
# else over unix sockets: the same protocol, framing and threads, another socket family.
if [ -e /proc/net/tcp ]; then
	ip link set lo up || fail "cannot bring up the loopback interface"
	export GMEM_TEST_MIGRATE_TRANSPORT=tcp
else
	export GMEM_TEST_MIGRATE_TRANSPORT=unix
fi
echo "$vm_wrapper: transport $GMEM_TEST_MIGRATE_TRANSPORT"
echo "$vm_wrapper: kernel $(uname -r)"
"$1" || fail "the postcopy test failed (exit $?)"
"$2" || fail "the migration test failed (exit $?)"
echo "$vm_wrapper: PASS"
