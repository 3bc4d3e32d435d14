#!/bin/bash
# Export the commits on top of gmem-base in the kernel tree back into kernel/patches/ and
# rewrite kernel/series, so the series in git is what the tree has.
#
# usage: kernel/export-patches.sh
#
# Patches are written as 0001-subject.patch, 0002-..., with zeroed commit ids so that
# re-exporting an unchanged series changes no file.  Old patch files are removed first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case ${1:-} in
'') ;;
-h|--help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
*) gmem_die "unknown argument: $1" ;;
esac

tree=$GMEM_KERNEL_TREE
g() { git -C "$tree" "$@"; }
g rev-parse -q --verify "refs/tags/$GMEM_KERNEL_BASE_TAG" >/dev/null ||
	gmem_die "$tree has no $GMEM_KERNEL_BASE_TAG tag; run kernel/prepare-tree.sh first"
if [ -n "$(g status --porcelain --untracked-files=no)" ]; then
	gmem_die "$tree has uncommitted changes; commit them first"
fi
if g merge-base --is-ancestor HEAD "$GMEM_KERNEL_BASE_TAG" &&
   [ "$(g rev-parse HEAD)" != "$(g rev-parse "$GMEM_KERNEL_BASE_TAG^{commit}")" ]; then
	gmem_die "HEAD is behind $GMEM_KERNEL_BASE_TAG"
fi
g merge-base --is-ancestor "$GMEM_KERNEL_BASE_TAG" HEAD ||
	gmem_die "HEAD does not descend from $GMEM_KERNEL_BASE_TAG"
if [ -n "$(g rev-list --merges "$GMEM_KERNEL_BASE_TAG..HEAD")" ]; then
	gmem_die "merge commits after $GMEM_KERNEL_BASE_TAG cannot be exported as a patch series"
fi

patches="$GMEM_KERNEL_DIR/patches"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
g format-patch -q --zero-commit --no-signature -N -o "$tmp" "$GMEM_KERNEL_BASE_TAG..HEAD"

rm -f "$patches"/*.patch
mkdir -p "$patches"
{
	echo "# The gmem kernel series, applied in order by prepare-tree.sh on top of tag gmem-base."
	echo "# One file name from kernel/patches/ per line; written by export-patches.sh."
	for p in "$tmp"/*.patch; do
		[ -f "$p" ] || continue
		mv "$p" "$patches/"
		basename "$p"
	done
} >"$GMEM_KERNEL_DIR/series"

# The tree now is exactly base + series: record that, so build.sh will not reset it.
gmem_stamp_write
n=$(grep -cv '^#' "$GMEM_KERNEL_DIR/series" || true)
gmem_log "exported $n patch(es) to $patches; kernel/series rewritten"
gmem_log "review with: git -C $GMEM_REPO_DIR status -- kernel"
