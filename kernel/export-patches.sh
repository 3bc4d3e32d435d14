#!/bin/bash
# Export the commits on top of gmem-base in the kernel tree back into kernel/patches/ and
# rewrite kernel/series, so the series in git is what the tree has.
#
# usage: kernel/export-patches.sh
#
# Patches are written as 0001-subject.patch, 0002-..., with zeroed commit ids so that
# re-exporting an unchanged series changes no file.  Old patch files are removed first.
# The cover letter, patches/0000-cover-letter.patch, is `git format-patch --cover-letter`'s,
# with its subject and blurb taken from kernel/cover-letter.txt (a "Subject: [PATCH vN 0/M]
# ..." line, a blank line, the text; M is set to the number of patches) and its date from the
# last commit; it is not listed in series, so prepare-tree.sh never applies it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case ${1:-} in
'') ;;
-h|--help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
*) gmem_die "unknown argument: $1" ;;
esac

tree=$GMEM_KERNEL_TREE
g() { git -C "$tree" "$@"; }
gmem_require_series_tree first
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
cover="$GMEM_KERNEL_DIR/cover-letter.txt"
cover_patch=0000-cover-letter.patch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cover_args=()
if [ -f "$cover" ]; then
	head -1 "$cover" | grep -q '^Subject: \[PATCH[^]]* 0/[0-9]*\] ' ||
		gmem_die "$cover must start with a 'Subject: [PATCH ... 0/N] ...' line"
	cover_args=(--cover-letter)
fi
g format-patch -q --zero-commit --no-signature -N "${cover_args[@]}" -o "$tmp" \
	"$GMEM_KERNEL_BASE_TAG..HEAD"
if [ -f "$cover" ]; then
	n=$(find "$tmp" -name '*.patch' ! -name "$cover_patch" | wc -l)
	date=$(g log -1 --format=%aD HEAD)
	author=$(g log -1 --format='%an <%ae>' HEAD)
	# Subject and blurb from the file, author and date from the last patch (format-patch
	# would take the tree's committer and the current time); the rest (shortlog, diffstat)
	# is git's.
	awk -v subj="$(head -1 "$cover" | sed "s|0/[0-9]*\]|0/$n]|")" -v date="$date" \
	    -v author="$author" -v blurb="$cover" '
		/^From: / && !done_from { print "From: " author; done_from = 1; skip = 1; next }
		/^Subject: / && !done_subj { print subj; done_subj = 1; skip = 1; next }
		skip && /^ / { next }
		{ skip = 0 }
		/^Date: / && !done_date { print "Date: " date; done_date = 1; next }
		/^\*\*\* BLURB HERE \*\*\*$/ {
			while ((getline line < blurb) > 0) if (++i > 2) print line
			next
		}
		{ print }' "$tmp/$cover_patch" >"$tmp/$cover_patch.new"
	mv "$tmp/$cover_patch.new" "$tmp/$cover_patch"
	! grep -q '\*\*\* .* HERE \*\*\*' "$tmp/$cover_patch" ||
		gmem_die "the cover letter still has a placeholder"
fi

rm -f "$patches"/*.patch
mkdir -p "$patches"
{
	echo "# The gmem kernel series, applied in order by prepare-tree.sh on top of tag gmem-base."
	echo "# One file name from kernel/patches/ per line; written by export-patches.sh."
	for p in "$tmp"/*.patch; do
		[ -f "$p" ] || continue
		mv "$p" "$patches/"
		# The cover letter goes with the series but is not a patch to apply.
		[ "$(basename "$p")" = "$cover_patch" ] || basename "$p"
	done
} >"$GMEM_KERNEL_DIR/series"

# The tree now is exactly base + series: record that, so build.sh will not reset it.
gmem_stamp_write
n=$(grep -cv '^#' "$GMEM_KERNEL_DIR/series" || true)
gmem_log "exported $n patch(es)${cover_args:+ and the cover letter} to $patches; kernel/series rewritten"
gmem_log "review with: git -C $GMEM_REPO_DIR status -- kernel"
