#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gmemctl populate against the real gmemd (under gmem-test-env): --json lines
# (one per PopulateProgress signal, monotonic, one final, then the result with
# residency and workers), plain lines when not on a terminal, the bar on one
# (a pty from script(1)), usage errors, and Ctrl-C (SIGINT) cancelling the
# populate in gmemd, which keeps what was allocated and keeps running.
set -euo pipefail

GMEMCTL=${GMEMCTL:?path to gmemctl}
fails=0
passes=0
MiB=1048576

ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }

# expect_exit EXIT TEXT -- CMD...: CMD exits EXIT and says TEXT.
expect_exit() {
        local want_exit=$1 text=$2
        shift 3
        local out rc=0
        out=$("$@" 2>&1) || rc=$?
        if [ "$rc" = "$want_exit" ] && grep -q -- "$text" <<<"$out"; then
                ok "$* -> exit $rc: $text"
        else
                bad "$* -> exit $rc (want $want_exit), output: $out"
        fi
}

resident() { "$GMEMCTL" --json show "$1" | jq '[.resident[]?.bytes] | add // 0'; }

"$GMEMCTL" --json create 256M --name pop --policy bind --nodes 0 --persist >/dev/null

# --json: progress lines, then the result.
out=$("$GMEMCTL" --json populate pop --workers 2)
progress=$(jq -c 'select(has("final"))' <<<"$out")
result=$(jq -c 'select(has("result"))' <<<"$out")
[ "$(jq -s 'map(select(.final)) | length' <<<"$progress")" = 1 ] &&
        [ "$(jq -s 'last | .final and .done == 268435456' <<<"$progress")" = true ] &&
        [ "$(jq -s '[.[].done] | . == sort' <<<"$progress")" = true ] &&
        ok "--json progress: $(wc -l <<<"$progress") line(s), monotonic, one final with all done" ||
        bad "--json progress: $out"
[ "$(jq -r .result <<<"$result")" = populated ] && [ "$(jq '[.resident[].bytes] | add' <<<"$result")" = 268435456 ] &&
        [ "$(jq '.workers | length' <<<"$result")" = 2 ] && [ "$(jq '[.workers[].node] | unique' -c <<<"$result")" = "[0]" ] &&
        ok "--json result: $result" || bad "--json result: $result"
[ "$(resident pop)" = 268435456 ] && ok "show agrees: all resident" || bad "show: $(resident pop)"

# Not a terminal: plain lines; a range. The region is 4 times the range, so
# gmemd measured all of it before answering: show is exact at once.
"$GMEMCTL" release pop >/dev/null
"$GMEMCTL" --json create 256M --name pop --policy bind --nodes 0 --persist >/dev/null
out=$("$GMEMCTL" populate pop 64M 64M)
grep -q '^populating /org/gmem1/region/[0-9]*: 64.0 MiB of 64.0 MiB (100%)$' <<<"$out" &&
        grep -q '^Populated 64.0 MiB of /org/gmem1/region/[0-9]* at offset 67108864 with' <<<"$out" &&
        grep -q '^Resident in the range: 64.0 MiB on node 0$' <<<"$out" &&
        ok "plain lines for a range" || bad "plain lines: $out"
[ "$(resident pop)" = $((64 * MiB)) ] && ok "only the range is resident" || bad "range resident: $(resident pop)"

# A terminal: the bar, redrawn in place.
out=$(script -qec "'$GMEMCTL' populate pop" /dev/null)
grep -q $'\r\\[########################################\\] 100% 256.0 MiB / 256.0 MiB' <<<"$out" &&
        ok "progress bar on a terminal" || bad "bar: $(od -c <<<"$out" | head -20)"

# Usage errors exit 2, the daemon's refusals exit 1 with the error's name.
expect_exit 2 "OFFSET needs a LENGTH" -- "$GMEMCTL" populate pop 0
expect_exit 2 "invalid --workers '0': give 1 to 64 workers per node" -- "$GMEMCTL" populate pop --workers 0
expect_exit 2 "invalid --workers '65'" -- "$GMEMCTL" populate pop --workers 65
expect_exit 2 "--workers is an option of populate, not of list" -- "$GMEMCTL" list --workers 2
expect_exit 2 "invalid length 'lots'" -- "$GMEMCTL" populate pop 0 lots
expect_exit 1 "org.gmem1.Error.InvalidArgument" -- "$GMEMCTL" populate pop 100 4096
expect_exit 1 "reaches past the end" -- "$GMEMCTL" populate pop 128M 256M
expect_exit 1 "no region 'nosuchregion'" -- "$GMEMCTL" populate nosuchregion

# Ctrl-C: SIGINT once the populate runs (its first progress line is out)
# cancels it in gmemd: exit 1, a "cancelled" result, what was done stays.
"$GMEMCTL" release pop >/dev/null
"$GMEMCTL" --json create 512M --name big --policy bind --nodes 0 --persist >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkfifo "$work/out"
"$GMEMCTL" --json populate big --workers 1 >"$work/out" 2>"$work/err" &
pop_pid=$!
exec 3<"$work/out"
read -r -t 60 first <&3
kill -INT "$pop_pid"
lines=$first
while read -r -t 60 line <&3; do lines+=$'\n'$line; done
exec 3<&-
rc=0
wait "$pop_pid" || rc=$?
result=$(jq -c 'select(has("result"))' <<<"$lines")
done_bytes=$(jq -s 'map(select(has("final"))) | last | .done' <<<"$lines")
[ "$rc" = 1 ] && [ "$(jq -r .result <<<"$result")" = cancelled ] &&
        [ "$(jq -r .error <<<"$result")" = org.gmem1.Error.Cancelled ] &&
        ok "Ctrl-C cancels in gmemd: exit $rc, $result" || bad "Ctrl-C: exit $rc, $lines"
[ "$done_bytes" -lt $((512 * MiB)) ] && [ "$(resident big)" = "$done_bytes" ] &&
        ok "cancelled after $((done_bytes / MiB)) MiB; Resident says the same" ||
        bad "after Ctrl-C: done $done_bytes, resident $(resident big)"
"$GMEMCTL" release big >/dev/null

kill -0 "${GMEMD_PID:?}" && ok "gmemd still running" || bad "gmemd died"
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
