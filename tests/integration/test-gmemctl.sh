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
"$GMEMCTL" show "$id" | grep -q '^ *Reason: policy bind on node(s) 0, as asked$' && ok "show: the placement's reason" ||
        bad "show reason: $("$GMEMCTL" show "$id")"
"$GMEMCTL" create 2M --populate | grep -q '^Created and populated 2.0 MiB in [0-9.]* s' &&
        ok "create --populate says how long it took" || bad "create --populate timing line"

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
expect_error 2 "invalid size '1X'" -- "$GMEMCTL" create 1X
expect_error 2 "unknown command 'frobnicate'" -- "$GMEMCTL" frobnicate
expect_error 2 "unknown option '--bogus'" -- "$GMEMCTL" --bogus list
expect_error 2 "--name is an option of create, not of list" -- "$GMEMCTL" list --name x
expect_error 2 "missing operand" -- "$GMEMCTL" show
expect_error 2 "unexpected argument '2'" -- "$GMEMCTL" show 1 2
expect_error 1 "no region '99'" -- "$GMEMCTL" show 99
# An error found by gmemctl itself carries no D-Bus error name.
! "$GMEMCTL" show 99 2>&1 | grep -q '(org\.' && ok "gmemctl's own error has no name" || bad "named own error"
# --bus=system and --bus=session use the usual D-Bus variables.
DBUS_SYSTEM_BUS_ADDRESS=$GMEM_BUS_ADDRESS "$GMEMCTL" --bus=system status >/dev/null &&
        ok "--bus=system (DBUS_SYSTEM_BUS_ADDRESS)" || bad "--bus=system"
DBUS_SESSION_BUS_ADDRESS=$GMEM_BUS_ADDRESS "$GMEMCTL" --bus=session status >/dev/null &&
        ok "--bus=session (DBUS_SESSION_BUS_ADDRESS)" || bad "--bus=session"
expect_error 1 "cannot connect to the bus" -- "$GMEMCTL" --bus=unix:path=/nonexistent list
# Usage errors end with the hint to --help.
out=$("$GMEMCTL" create 1X 2>&1) || true
grep -q "^Try 'gmemctl create --help'" <<<"$out" && ok "usage error hints at --help" || bad "no hint: $out"
# --numa-page-tables follows what the kernel has (KernelFeatures.NumaAwarePageTables).
if [ "$(jq .kernel_features.NumaAwarePageTables <<<"$status")" = true ]; then
        "$GMEMCTL" create 2M --numa-page-tables >/dev/null && ok "--numa-page-tables on a kernel with it" ||
                bad "--numa-page-tables failed on a kernel with it"
else
        expect_error 1 org.gmem1.Error.Unsupported -- "$GMEMCTL" create 2M --numa-page-tables
fi
[ "$(regions)" = 0 ] && ok "no region leaked by the errors" || bad "leaked regions"

# list pages (ListRegionsFiltered): --limit, --offset, --below, --uid; newest first from gmemd,
# shown sorted by id.
ids=()
for n in a b c; do ids+=("$("$GMEMCTL" --json create 2M --name "page-$n" --persist | jq .id)"); done
page() { "$GMEMCTL" --json list "$@" | jq -c '[.regions[].id]'; }
[ "$(page --limit 2)" = "[${ids[1]},${ids[2]}]" ] && ok "list --limit 2: the two newest" || bad "--limit 2: $(page --limit 2)"
[ "$(page --limit 2 --offset 1)" = "[${ids[0]},${ids[1]}]" ] && ok "list --limit 2 --offset 1" ||
        bad "--offset 1: $(page --limit 2 --offset 1)"
[ "$(page --below "${ids[1]}")" = "[${ids[0]}]" ] && ok "list --below ${ids[1]}" || bad "--below: $(page --below "${ids[1]}")"
[ "$(page --uid "$(id -u)")" = "[${ids[0]},${ids[1]},${ids[2]}]" ] && ok "list --uid $(id -u)" || bad "--uid: $(page --uid "$(id -u)")"
[ "$(page --uid "$(id -un)" --limit 1)" = "[${ids[2]}]" ] && ok "list --uid $(id -un) (a name) --limit 1" ||
        bad "--uid name: $(page --uid "$(id -un)" --limit 1)"
[ "$(page --uid 4242)" = "[]" ] && ok "list --uid 4242: none" || bad "--uid 4242: $(page --uid 4242)"
"$GMEMCTL" list --limit 2 | grep -q "^More may follow: the next page is --below=${ids[1]} " &&
        ok "list --limit names the next page" || bad "no next page hint: $("$GMEMCTL" list --limit 2)"
! "$GMEMCTL" list --limit 3 --offset 1 | grep -q "More may follow" && ok "no next page hint on a short page" ||
        bad "next page hint on a short page"
expect_error 2 "invalid --limit '0': give a number from 1 to 4294967295" -- "$GMEMCTL" list --limit 0
expect_error 2 "invalid --limit '4294967296'" -- "$GMEMCTL" list --limit 4294967296
expect_error 2 "invalid --offset '-1'" -- "$GMEMCTL" list --offset -1
expect_error 2 "invalid --below '0'" -- "$GMEMCTL" list --below 0
expect_error 2 "invalid --uid 'no-such-user-here'" -- "$GMEMCTL" list --uid no-such-user-here
expect_error 2 "invalid --uid '4294967295'" -- "$GMEMCTL" list --uid 4294967295
expect_error 2 "--limit is an option of list, not of status" -- "$GMEMCTL" status --limit 2
"$GMEMCTL" list --help | grep -q -- '--below=ID' && ok "list --help" || bad "list --help"
for i in "${ids[@]}"; do "$GMEMCTL" release "$i" >/dev/null; done
[ "$(regions)" = 0 ] && ok "list pages: regions released" || bad "list pages left regions"

# Help and version.
"$GMEMCTL" --help | grep -q '^Usage: gmemctl' && ok "--help" || bad "--help"
"$GMEMCTL" help | grep -q '^Usage: gmemctl' && ok "help" || bad "help"
"$GMEMCTL" create --help | grep -q -- '--populate' && ok "create --help" || bad "create --help"
"$GMEMCTL" help create | grep -q '^Usage: gmemctl .*create SIZE' && ok "help create" || bad "help create"
expect_error 2 "unknown command 'nope'" -- "$GMEMCTL" help nope
"$GMEMCTL" --version | grep -q '[0-9]' && ok "--version" || bad "--version"

# Size suffixes: bytes, K/M/G/T and KiB/MiB/GiB/TiB (binary).
for s in 4096:4096 8K:8192 64M:67108864 1G:1073741824 2MiB:2097152 12KiB:12288 1GiB:1073741824; do
        size=$("$GMEMCTL" --json create "${s%%:*}" 2>/dev/null | jq .size)
        [ "$size" = "${s#*:}" ] && ok "size ${s%%:*} = $size bytes" || bad "size ${s%%:*} gave '$size'"
done
# T and TiB: more than this host has, so gmemd's NoSpace message gives the bytes.
expect_error 1 "(70368744177664 bytes)" -- "$GMEMCTL" create 64T
expect_error 1 "(140737488355328 bytes)" -- "$GMEMCTL" create 128TiB

# --private: a guest_memfd without INIT_SHARED; populated. The host sees its pages only
# through the kernel's per-node counts (KernelFeatures.GuestMemfdInfo, gmem kernel series).
created=$("$GMEMCTL" --json create 2M --private --populate --name priv --persist)
want=0
[ "$(jq .kernel_features.GuestMemfdInfo <<<"$status")" = true ] && want=2097152
[ "$(jq '[.resident[].bytes] | add // 0' <<<"$created")" = "$want" ] &&
        ok "--private --populate: Resident $want bytes" || bad "--private: $created"
"$GMEMCTL" release priv >/dev/null

# JSON keys and types of every verb (gmemctl(1), JSON OUTPUT).
keys() { jq -c "$1" <<<"$2"; }
status=$("$GMEMCTL" --json status)
[ "$(keys '[keys_unsorted[]] | sort' "$status")" = '["kernel_features","nodes","region_bytes","regions","restored_regions","version"]' ] &&
        [ "$(keys '.nodes[0] | keys | sort' "$status")" = '["budget","budget_left","cpus","distances","free","held","node","promised","total"]' ] &&
        [ "$(keys '[.version, .regions, .region_bytes, .restored_regions, .kernel_features.GuestMemfdFlags] | map(type)' "$status")" = \
          '["string","number","number","number","number"]' ] && ok "status JSON keys" || bad "status JSON: $status"
created=$("$GMEMCTL" --json create 4M --name keys --policy bind --nodes 0 --populate --persist)
id=$(jq .id <<<"$created")
[ "$(keys 'keys | sort' "$created")" = '["id","name","nodes","path","placement_reason","policy","resident","size"]' ] &&
        [ "$(keys '.resident[0] | keys | sort' "$created")" = '["bytes","node"]' ] &&
        [ "$(keys .nodes "$created")" = '[0]' ] && ok "create JSON keys" || bad "create JSON: $created"
list=$("$GMEMCTL" --json list)
[ "$(jq -c '[.regions[].id]' <<<"$list")" = "$(jq -c '[.regions[].id] | sort' <<<"$list")" ] &&
        ok "list sorted by id" || bad "list order: $list"
[ "$(keys '.regions[0] | keys | sort' "$list")" = '["id","name","owner_uid","path","policy","size"]' ] &&
        ok "list JSON keys" || bad "list JSON: $list"
shown=$("$GMEMCTL" --json show keys)
[ "$(keys 'keys | sort' "$shown")" = '["id","name","nodes","owner_pid","owner_uid","path","placement_reason","policy","resident","size"]' ] &&
        [ "$(jq '.owner_pid | type' <<<"$shown")" = '"number"' ] && [ "$(jq .owner_pid <<<"$shown")" -gt 0 ] &&
        ok "show JSON keys" || bad "show JSON: $shown"
[ "$("$GMEMCTL" --json status | jq .region_bytes)" = 4194304 ] && ok "status region_bytes" || bad "region_bytes"
[ "$(jq -r .version <<<"$status")" = "$("$GMEMCTL" --version | grep -o '[0-9][0-9.]*' | head -1)" ] &&
        ok "status version = gmemctl --version" || bad "version: $(jq .version <<<"$status")"
# Not a terminal: one JSON document on one line.
[ "$("$GMEMCTL" --json list | wc -l)" = 1 ] && ok "JSON on one line" || bad "JSON spans lines"
# A daemon error: exit 1, "gmemctl: message (error-name)" on stderr, nothing on stdout.
rc=0
out=$("$GMEMCTL" create 2M --policy bind --nodes 9 2>/dev/null) || rc=$?
err=$("$GMEMCTL" create 2M --policy bind --nodes 9 2>&1 >/dev/null) || true
[ "$rc" = 1 ] && [ -z "$out" ] && grep -qx 'gmemctl: .* (org\.gmem1\.Error\.InvalidArgument)' <<<"$err" &&
        ok "daemon error format: $err" || bad "daemon error: exit $rc, stdout '$out', stderr '$err'"

# show by object path, and an all-digit name: an id first, then a name.
"$GMEMCTL" show "/org/gmem1/region/$id" | grep -q 'Name: keys' && ok "show by path" || bad "show by path"
digits=$("$GMEMCTL" --json create 2M --name 99999 --persist | jq .id)
[ "$("$GMEMCTL" --json show 99999 | jq .id)" = "$digits" ] && ok "show by all-digit name" || bad "show 99999"
named=$("$GMEMCTL" --json create 2M --name "$id" --persist | jq .id)
[ "$("$GMEMCTL" --json show "$id" | jq .name)" = '"keys"' ] && ok "an all-digit name that is also an id: the id wins" ||
        bad "show $id"
released=$("$GMEMCTL" --json release "$named")
[ "$(keys 'keys | sort' "$released")" = '["id","name","path","released"]' ] && [ "$(jq .released <<<"$released")" = true ] &&
        ok "release JSON" || bad "release JSON: $released"

# --no-legend: rows only.
[ "$("$GMEMCTL" list | head -1 | cut -d' ' -f1)" = ID ] && "$GMEMCTL" list | grep -q 'regions listed' &&
        [ "$("$GMEMCTL" list --no-legend | grep -c -e '^ID ' -e 'listed')" = 0 ] &&
        [ "$("$GMEMCTL" list --no-legend | wc -l)" = 2 ] && ok "--no-legend" || bad "--no-legend: $("$GMEMCTL" list --no-legend)"

# --bus= names the bus instead of $GMEM_BUS_ADDRESS.
[ "$(GMEM_BUS_ADDRESS=unix:path=/nonexistent "$GMEMCTL" --bus="$GMEM_BUS_ADDRESS" --json list | jq '.regions | length')" = 2 ] &&
        ok "--bus=ADDRESS" || bad "--bus"
"$GMEMCTL" release keys >/dev/null && "$GMEMCTL" release 99999 >/dev/null

# --hold: the region exists while gmemctl holds it, SIGTERM releases it, exit 0.
coproc HOLD { exec "$GMEMCTL" create 2M --name held --hold --json 2>&1; }
hold_pid=$HOLD_PID
line=
while read -r -t 60 line <&"${HOLD[0]}"; do
        case $line in Holding*) break ;; esac
done
[[ $line == "Holding region "* ]] && [ "$(regions)" = 1 ] && ok "--hold holds: $line" || bad "--hold: '$line'"
kill -TERM "$hold_pid"
rc=0
wait "$hold_pid" || rc=$?
[ "$rc" = 0 ] && [ "$(regions)" = 0 ] && ok "--hold: SIGTERM releases, exit 0" || bad "--hold exit $rc, $(regions) regions"

# create --policy=auto --cpus: the CPUs' node, and why (libgmem passes cpus and spill on).
created=$("$GMEMCTL" --json create 2M --policy auto --cpus 0 --spill)
[ "$(jq -c .nodes <<<"$created")" = '[0]' ] && [[ "$(jq -r .placement_reason <<<"$created")" == "cpus 0 run on node 0, which has room"* ]] &&
        ok "create --cpus 0 --spill: $(jq -r .placement_reason <<<"$created")" || bad "create --cpus: $created"
expect_error 1 "option 'cpus': '1000000' is not a CPU list of this host" -- "$GMEMCTL" create 2M --policy auto --cpus 1000000
expect_error 1 "option 'cpus' only applies to policy 'auto', not 'default'" -- "$GMEMCTL" create 2M --cpus 0
expect_error 2 "--cpus is an option of create, not of list" -- "$GMEMCTL" list --cpus 0

# status: a bar per node; --watch repeats it (plain, not a terminal here).
"$GMEMCTL" create 8M --name bar --policy bind --nodes 0 --populate --persist >/dev/null
"$GMEMCTL" status | grep -q '^node 0 *\[#[#=-]* *\] held 8.0 MiB, promised 8.0 MiB, .* free$' &&
        ok "status: node 0's bar" || bad "status bar: $("$GMEMCTL" status | grep '^node')"
status=$("$GMEMCTL" --json status)
[ "$(jq '.nodes[0].promised' <<<"$status")" = 8388608 ] && [ "$(jq '.nodes[0].budget' <<<"$status")" = null ] &&
        [ "$(jq -c '.nodes[0].distances[0]' <<<"$status")" = '[0,10]' ] && ok "status JSON: promised, no budget, distances" ||
        bad "status JSON facts: $status"
[ "$("$GMEMCTL" status --watch=0.1 --count=3 | grep -c '^Kernel features:')" = 3 ] &&
        [ "$("$GMEMCTL" --json status --watch=0.1 --count=2 | jq -s 'length')" = 2 ] &&
        ok "status --watch --count: 3 rounds, and 2 JSON lines" || bad "status --watch"
expect_error 2 "invalid --watch interval 'soon'" -- "$GMEMCTL" status --watch=soon
expect_error 2 "invalid --watch interval '0'" -- "$GMEMCTL" status --watch=0
expect_error 2 "--count needs --watch" -- "$GMEMCTL" status --count=2
expect_error 2 "--watch is an option of status, not of list" -- "$GMEMCTL" list --watch
coproc WATCH { exec "$GMEMCTL" status --watch=30 2>&1; }
watch_pid=$WATCH_PID
while read -r -t 60 line <&"${WATCH[0]}"; do
        case $line in Regions:*) break ;; esac
done
kill -TERM "$watch_pid"
rc=0
wait "$watch_pid" || rc=$?
[ "$rc" = 0 ] && ok "status --watch: SIGTERM ends it, exit 0" || bad "status --watch exit $rc"

# usage: per uid, as a table and JSON.
usage=$("$GMEMCTL" --json usage)
[ "$(jq -c --argjson uid "$(id -u)" '.users[] | select(.uid == $uid) | [.regions, .bytes, .bytes_per_node["0"], .bytes_left, .regions_left]' <<<"$usage")" = \
  '[1,8388608,8388608,null,null]' ] && ok "usage --json: $usage" || bad "usage --json: $usage"
"$GMEMCTL" usage | grep -q '^0 (root) *1 *8.0 MiB *0:8.0 MiB *- *-$' && ok "usage table" ||
        bad "usage table: $("$GMEMCTL" usage)"

# metrics: the Prometheus text format, read strictly; the figures are gmemd's.
metrics=$("$GMEMCTL" metrics)
checker=$(dirname "$0")/check-prometheus.awk
awk -f "$checker" <<<"$metrics" && ok "metrics: valid Prometheus text format" || bad "metrics format: $metrics"
grep -qx 'gmem_regions 1' <<<"$metrics" && grep -qx "gmem_user_bytes{uid=\"$(id -u)\"} 8388608" <<<"$metrics" &&
        grep -qx 'gmem_node_promised_bytes{node="0"} 8388608' <<<"$metrics" &&
        ! grep -q '^gmem_node_budget_bytes{' <<<"$metrics" && ok "metrics: regions, bytes per uid, promised per node" ||
        bad "metrics values: $metrics"
# The checker is strict: it refuses what a textfile collector would refuse.
for broken in 'gmem_x 1' $'# TYPE gmem_x gauge\ngmem_x{node="0} 1' $'# TYPE gmem_x gauge\ngmem_x 1\ngmem_x 1' \
              $'# TYPE gmem_x gauge\ngmem_x 1.2.3'; do
        awk -f "$checker" <<<"$broken" 2>/dev/null && bad "checker accepts: $broken" || ok "checker refuses: ${broken//$'\n'/|}"
done
"$GMEMCTL" release bar >/dev/null

# export -> import (precopy_only, one gmemd serving both ends) -> migrations.
# Loopback TCP, or a unix socket on a kernel without TCP/IP (the vm tier's guest).
listen=tcp:127.0.0.1:0
[ -e /proc/net/tcp ] || listen=unix:$(mktemp -u /tmp/gmemctl-migrate-XXXXXX.sock)
"$GMEMCTL" create 4M --name mig-src --persist >/dev/null
exported=$("$GMEMCTL" --json export mig-src --listen="$listen")
endpoint=$(jq -r .endpoint <<<"$exported")
token=$(jq -r .token <<<"$exported")
[ "$(jq -c 'keys' <<<"$exported")" = '["endpoint","migration","token"]' ] && [[ $endpoint == ${listen%:0}* ]] &&
        [ "${#token}" = 64 ] && ok "export JSON" || bad "export JSON: $exported"
"$GMEMCTL" migrations | grep -q 'source serve waiting' && ok "migrations: the source waits" || bad "migrations: $("$GMEMCTL" migrations)"
expect_error 1 org.gmem1.Error.AuthenticationFailed -- "$GMEMCTL" import 4M "$endpoint" wrong-token-0123456789 --precopy-only
imported=$("$GMEMCTL" --json import 4M "$endpoint" "$token" --precopy-only --persist --name mig-dst)
dst=$(jq -r .id <<<"$imported")
mig=$("$GMEMCTL" --json migrations)
[ "$(jq -r '[.[] | select(.Role == "destination")][0] | "\(.State) \(.PagesPresent) \(.PagesTotal) \(.Mode)"' <<<"$mig")" = \
        "completed 1024 1024 precopy" ] && ok "import: the destination migration completed" || bad "migrations JSON: $mig"
"$GMEMCTL" migrations | grep -q 'destination precopy completed \[####################\] 100% 1024/1024' &&
        ok "migrations: progress bar" || bad "migrations table: $("$GMEMCTL" migrations)"
expect_error 2 'is an option of import' -- "$GMEMCTL" export mig-src --precopy-only
expect_error 2 'missing operand' -- "$GMEMCTL" import 4M "$endpoint"
"$GMEMCTL" release mig-src >/dev/null && "$GMEMCTL" release "$dst" >/dev/null
[ "$("$GMEMCTL" --json migrations)" = '[]' ] && ok "migrations end with their regions" || bad "migrations left: $("$GMEMCTL" --json migrations)"

kill -0 "${GMEMD_PID:?}" && ok "gmemd still running" || bad "gmemd died"
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
