#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every C file of the kernel proper that kernel/series touches must compile without a
# warning at W=1 (selftests under tools/ are built with their own -Wall by build.sh).
# Recompiles just those objects, with W=1, in an existing build (kernel/build.sh first).
#
# usage: kernel/check-w1.sh [--debug]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=gmem
case ${1:-} in
'') ;;
--debug) flavour=gmem-debug ;;
-h|--help) sed -n '3,7s/^# \{0,1\}//p' "$0"; exit 0 ;;
*) gmem_die "unknown argument: $1" ;;
esac

build=$GMEM_BUILD_ROOT/$flavour
[ -f "$build/.config" ] || gmem_die "no build in $build; run kernel/build.sh first"

objs=()
while read -r p; do
	case $p in ''|'#'*) continue ;; esac
	for f in $(sed -n 's|^+++ b/\(.*\.c\)$|\1|p' "$GMEM_KERNEL_DIR/patches/$p"); do
		case $f in tools/*) continue ;; esac
		# Only what this configuration builds: the object exists after build.sh.
		[ -f "$build/${f%.c}.o" ] && objs+=("${f%.c}.o")
	done
done < "$GMEM_KERNEL_DIR/series"
mapfile -t objs < <(printf '%s\n' "${objs[@]}" | sort -u)
[ ${#objs[@]} -gt 0 ] || gmem_die "no object of a touched file in $build"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Touch the sources so make recompiles them even when W=1 was used last time too.
for o in "${objs[@]}"; do touch "$GMEM_KERNEL_TREE/${o%.o}.c"; done
make -C "$GMEM_KERNEL_TREE" O="$build" CC="ccache gcc" HOSTCC="ccache gcc" LOCALVERSION= \
	-j"$(nproc)" W=1 "${objs[@]}" >"$log" 2>&1 || { cat "$log" >&2; gmem_die "W=1 build failed"; }
if grep -E 'warning:' "$log" >&2; then
	gmem_die "W=1 warnings in files the series touches (above)"
fi
echo "ok: ${#objs[@]} touched object(s) W=1 warning-free: ${objs[*]}"
