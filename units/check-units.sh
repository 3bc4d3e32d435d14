#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# systemd must accept gmemd.service as installed: verify clean, and the
# hardening scored by systemd-analyze security at or below the threshold.
set -euo pipefail
unit=$1 gmemd=$2 threshold=${3:-20}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Point ExecStart at the built binary so verify can check it exists.
sed "s|^ExecStart=[^ ]*|ExecStart=$gmemd|" "$unit" > "$dir/gmemd.service"
out=$(systemd-analyze verify --man=no "$dir/gmemd.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "systemd-analyze verify: $out"; exit 1; fi
echo "ok: systemd-analyze verify accepts gmemd.service"
systemd-analyze security --offline=true --threshold="$threshold" "$dir/gmemd.service" | tail -1
echo "ok: exposure within $((threshold / 10)).$((threshold % 10))"
