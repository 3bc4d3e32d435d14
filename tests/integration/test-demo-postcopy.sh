#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The demo VMM's migration modes against the real gmemd (under gmem-test-env): one demo-vmm
# --serve exports its memory with the guest code loaded; another --postcopy imports it and runs
# the vCPU on it (exit mode on the gmem kernel: every missing page resolved through libgmem's
# fast channel; a full copy first on a stock kernel). The pattern the vCPU writes is checked.
set -euo pipefail
DEMO=${1:?path to demo-vmm}

# Loopback TCP, or a unix socket on a kernel without TCP/IP (the vm tier's).
listen=tcp:127.0.0.1:0
[ -e /proc/net/tcp ] || listen=unix:$(mktemp -u /tmp/gmem-demo-XXXXXX.sock)
coproc SERVE { exec "$DEMO" --serve --size=1M --listen="$listen"; }
serve_pid=$SERVE_PID
line=
while read -r -t 60 line <&"${SERVE[0]}"; do
        case $line in serving*) break ;; esac
done
[[ $line == "serving "* ]] || { echo "FAIL: --serve said '$line'"; exit 1; }
read -r _ endpoint token <<<"$line"
out=$("$DEMO" --postcopy="$endpoint" --token="$token" --size=1M)
echo "$out"
grep -q 'vCPU ran to HLT and wrote 256 words' <<<"$out" || { echo "FAIL: the imported guest did not run"; exit 1; }
if grep -q 'no KVM_CAP_GUEST_MEMFD_MISSING' <<<"$out"; then
        echo "ok: stock kernel: the demo imported with a full copy and ran"
else
        # The code page and the data page at least came as vCPU exits.
        n=$(sed -n 's/^postcopy: \([0-9]*\) missing page.*/\1/p' <<<"$out")
        [ "${n:-0}" -ge 2 ] || { echo "FAIL: only ${n:-0} missing pages resolved"; exit 1; }
        echo "ok: exit mode: $n missing pages resolved through the fast channel"
fi
# Closing its stdin ends the server, which must exit 0.
exec {SERVE[1]}>&-
wait "$serve_pid" || { echo "FAIL: demo-vmm --serve exited $?"; exit 1; }
kill -0 "${GMEMD_PID:?}" || { echo "FAIL: gmemd died"; exit 1; }
echo "ok: demo-vmm postcopy"
