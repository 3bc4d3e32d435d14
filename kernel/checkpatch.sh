#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every patch of kernel/series must be checkpatch.pl --strict clean, run from
# the pinned tree. FILE_PATH_CHANGES ("does MAINTAINERS need updating?") is
# ignored: new selftests fall under existing MAINTAINERS globs. The cover letter
# (patches/0000-cover-letter.patch, not in series) is not a patch: it is only
# checked to announce as many patches as the series has, and to have no
# placeholder left.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tree=${GMEM_KERNEL_TREE:-${GMEM_CACHE_DIR:-/var/cache/gmem}/linux}
[ -x "$tree/scripts/checkpatch.pl" ] || { echo "checkpatch: no tree at $tree (kernel/prepare-tree.sh)" >&2; exit 1; }
cd "$tree"
fail=0 n=0
while read -r p; do
        case $p in ''|'#'*|0000-*) continue ;; esac
        n=$((n + 1))
        if ! ./scripts/checkpatch.pl --strict --quiet --ignore FILE_PATH_CHANGES "$here/patches/$p"; then
                echo "checkpatch: $p is not clean" >&2
                fail=1
        fi
done < "$here/series"
cover="$here/patches/0000-cover-letter.patch" cover_msg=
if [ -f "$cover" ]; then
        cover_msg=", cover letter for 0/$n"
        if ! grep -q "^Subject: \[PATCH[^]]* 0/$n\] " "$cover"; then
                echo "checkpatch: the cover letter does not announce 0/$n patches" >&2
                fail=1
        fi
        if grep -q '\*\*\* .* HERE \*\*\*' "$cover"; then
                echo "checkpatch: the cover letter has a placeholder left" >&2
                fail=1
        fi
fi
[ "$fail" = 0 ] && echo "ok: $n patch(es) checkpatch.pl --strict clean$cover_msg"
exit "$fail"
