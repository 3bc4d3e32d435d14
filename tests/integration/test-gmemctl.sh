#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Drives gmemctl against the real gmemd (run under gmem-test-env, which sets
# GMEM_BUS_ADDRESS): human and JSON output, the region lifecycle, named errors
# with their exit codes, and that the daemon survives all of it.
set -euo pipefail

GMEMCTL=${GMEMCTL:?path to gmemctl}
fails=0
passes=0

ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }

# expect_error EXIT NAME -- CMD...: CMD exits EXIT and names error NAME.
expect_error() {
        local want_exit=$1 name=$2
        shift 3
        local out rc=0
        out=$("$@" 2>&1) || rc=$?
        if [ "$rc" = "$want_exit" ] && grep -q -- "$name" <<<"$out"; then
                ok "$* -> exit $rc, $name"
        else
                bad "$* -> exit $rc (want $want_exit), output: $out"
        fi
}

regions() { "$GMEMCTL" --json list | jq '.regions | length'; }

# status: the one node of this host, the guest_memfd features, no regions.
status=$("$GMEMCTL" --json status)
[ "$(jq '.nodes | length' <<<"$status")" -ge 1 ] && ok "status lists nodes" || bad "status: $status"
[ "$(jq '.kernel_features.GuestMemfd' <<<"$status")" = true ] && ok "status: GuestMemfd" || bad "no GuestMemfd: $status"
[ "$(jq '.regions' <<<"$status")" = 0 ] && ok "status: no regions" || bad "status regions: $status"
"$GMEMCTL" status | grep -q '^Kernel features:' && ok "status table" || bad "status table"

# create -> list -> show -> release, by name and by id.
created=$("$GMEMCTL" --json create 4M --name ctl-test --policy bind --nodes 0 --populate --persist)
id=$(jq -r .id <<<"$created")
[ "$(jq -r .policy <<<"$created")" = bind ] && [ "$(jq .size <<<"$created")" = 4194304 ] &&
        ok "create --json: $created" || bad "create: $created"
[ "$(jq '[.resident[] | select(.node == 0) | .bytes] | add' <<<"$created")" = 4194304 ] &&
        ok "populated region is resident on node 0" || bad "resident: $created"
[ "$(regions)" = 1 ] && ok "list shows the persistent region" || bad "list: $("$GMEMCTL" list)"
"$GMEMCTL" list | grep -q 'ctl-test' && ok "list table names it" || bad "list table"
shown=$("$GMEMCTL" --json show ctl-test)
[ "$(jq -r .path <<<"$shown")" = "/org/gmem1/region/$id" ] && [ "$(jq .owner_uid <<<"$shown")" = "$(id -u)" ] &&
        ok "show by name" || bad "show: $shown"
"$GMEMCTL" show "$id" | grep -q 'Resident: 4.0 MiB on node 0' && ok "show by id, human" || bad "show by id"

# Another uid may not release it (the test bus lets it reach the daemon). The
# build dir may sit under a directory other uids cannot enter, so that uid runs
# a copy of gmemctl and libgmem from a directory it can read.
foreign=$(mktemp -d)
trap 'rm -rf "$foreign"' EXIT
cp "$GMEMCTL" "$foreign/gmemctl"
cp -L "$(dirname "$GMEMCTL")/../libgmem/libgmem.so.0" "$foreign/"
chmod 755 "$foreign"
expect_error 1 org.gmem1.Error.PermissionDenied -- \
        setpriv --reuid=65534 --regid=65534 --clear-groups env LD_LIBRARY_PATH="$foreign" \
        "$foreign/gmemctl" release "$id"
[ "$(regions)" = 1 ] && ok "region survives the foreign release" || bad "region lost"
"$GMEMCTL" release ctl-test >/dev/null && [ "$(regions)" = 0 ] && ok "release" || bad "release"
expect_error 1 "no region" -- "$GMEMCTL" release ctl-test

# A non-persistent region goes away with gmemctl.
"$GMEMCTL" create 2M --name transient >/dev/null && [ "$(regions)" = 0 ] &&
        ok "non-persistent region released when gmemctl exits" || bad "transient region left behind"

# Bad input: named errors, exit 1 from the daemon, exit 2 for usage.
expect_error 1 org.gmem1.Error.InvalidArgument -- "$GMEMCTL" create 0
expect_error 1 org.gmem1.Error.InvalidArgument -- "$GMEMCTL" create 12345
expect_error 1 org.gmem1.Error.NoSpace -- "$GMEMCTL" create 64T --policy bind --nodes 0
expect_error 1 org.gmem1.Error.InvalidArgument -- "$GMEMCTL" create 2M --policy bind --nodes 9
expect_error 1 org.gmem1.Error.InvalidArgument -- "$GMEMCTL" create 2M --policy preferred
expect_error 2 "unknown policy" -- "$GMEMCTL" create 2M --policy nope
expect_error 2 "invalid node list" -- "$GMEMCTL" create 2M --nodes 0-
expect_error 2 "" -- "$GMEMCTL" create 1X
expect_error 2 "" -- "$GMEMCTL" frobnicate
expect_error 2 "" -- "$GMEMCTL" list --name x
# --numa-page-tables follows what the kernel has (KernelFeatures.NumaAwarePageTables).
if [ "$(jq .kernel_features.NumaAwarePageTables <<<"$status")" = true ]; then
        "$GMEMCTL" create 2M --numa-page-tables >/dev/null && ok "--numa-page-tables on a kernel with it" ||
                bad "--numa-page-tables failed on a kernel with it"
else
        expect_error 1 org.gmem1.Error.Unsupported -- "$GMEMCTL" create 2M --numa-page-tables
fi
[ "$(regions)" = 0 ] && ok "no region leaked by the errors" || bad "leaked regions"

# Help and version.
"$GMEMCTL" --help | grep -q '^Usage: gmemctl' && ok "--help" || bad "--help"
"$GMEMCTL" create --help | grep -q -- '--populate' && ok "create --help" || bad "create --help"
"$GMEMCTL" --version | grep -q '[0-9]' && ok "--version" || bad "--version"

kill -0 "${GMEMD_PID:?}" && ok "gmemd still running" || bad "gmemd died"
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
