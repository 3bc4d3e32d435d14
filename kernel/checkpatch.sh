#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every patch of kernel/series must be checkpatch.pl --strict clean, run from
# the pinned tree. FILE_PATH_CHANGES ("does MAINTAINERS need updating?") is
# ignored: new selftests fall under existing MAINTAINERS globs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tree=${GMEM_KERNEL_TREE:-${GMEM_CACHE_DIR:-/var/cache/gmem}/linux}
[ -x "$tree/scripts/checkpatch.pl" ] || { echo "checkpatch: no tree at $tree (kernel/prepare-tree.sh)" >&2; exit 1; }
cd "$tree"
fail=0 n=0
while read -r p; do
        case $p in ''|'#'*) continue ;; esac
        n=$((n + 1))
        if ! ./scripts/checkpatch.pl --strict --quiet --ignore FILE_PATH_CHANGES "$here/patches/$p"; then
                echo "checkpatch: $p is not clean" >&2
                fail=1
        fi
done < "$here/series"
[ "$fail" = 0 ] && echo "ok: $n patch(es) checkpatch.pl --strict clean"
exit "$fail"
