#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fold "fixup!"/"squash!" commits into the series in the kernel tree (git rebase -i
# --autosquash onto the base tag), then give every file whose content the rebase did not
# change its old mtime back: rewriting the commits after the fixed one rewrites their files,
# and make would otherwise rebuild half the kernel. Export with export-patches.sh afterwards.
#
# usage: kernel/autosquash.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case ${1:-} in
'') ;;
-h|--help) sed -n '3,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
*) gmem_die "unknown argument: $1" ;;
esac

gmem_require_series_tree "(as fixup! commits) first"
cd "$GMEM_KERNEL_TREE"

old=$(git rev-parse HEAD)
declare -A mtime
while read -r f; do
	[ -e "$f" ] && mtime[$f]=$(stat -c %y "$f")
done < <(git diff --name-only "$GMEM_KERNEL_BASE_TAG" "$old")

GIT_SEQUENCE_EDITOR=true git rebase -q -i --autosquash "$GMEM_KERNEL_BASE_TAG"

changed=$(git diff --name-only "$old" HEAD)
for f in "${!mtime[@]}"; do
	grep -qxF "$f" <<<"$changed" || touch -d "${mtime[$f]}" "$f"
done
gmem_log "series folded; content changed in: ${changed:-nothing}"
