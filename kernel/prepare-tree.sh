#!/bin/bash
# Unpack the pinned kernel source into a git tree outside the repo, commit it as the base
# (tag gmem-base) and apply kernel/series on top with git am, one commit per patch.
#
# usage: kernel/prepare-tree.sh [--force] [--print-tree]
#   --force       also reset a tree with uncommitted changes (they are stashed, not lost)
#   --print-tree  only print the tree's path
#
# Re-running resets the tree to gmem-base + series.  Commits made in the tree that were not
# exported are kept under refs/gmem/backup/ before the reset, so nothing is lost silently.
# Environment: GMEM_CACHE_DIR (default /var/cache/gmem), GMEM_KERNEL_TREE (default
# $GMEM_CACHE_DIR/linux).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

force=0
for arg; do
	case $arg in
	--print-tree) echo "$GMEM_KERNEL_TREE"; exit 0 ;;
	--force) force=1 ;;
	-h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) gmem_die "unknown argument: $arg" ;;
	esac
done

tree=$GMEM_KERNEL_TREE
# A fixed identity and dates make the base commit and the applied series reproducible.
export GIT_AUTHOR_NAME="gmem kernel base" GIT_AUTHOR_EMAIL="gmem@localhost"
export GIT_COMMITTER_NAME="gmem prepare-tree" GIT_COMMITTER_EMAIL="gmem@localhost"
g() { git -C "$tree" "$@"; }

"$GMEM_KERNEL_DIR/fetch-source.sh" >/dev/null
gmem_tarball_ok || gmem_die "tarball does not match kernel/VERSION"

mkdir -p "$(dirname "$tree")"
exec 9>"$tree.lock"
flock 9

# The base tag's message names the tarball hash it was made from.
base_ok=0
if [ -d "$tree/.git" ] && g rev-parse -q --verify "refs/tags/$GMEM_KERNEL_BASE_TAG" >/dev/null; then
	if g cat-file tag "$GMEM_KERNEL_BASE_TAG" | grep -q "sha256 $GMEM_KERNEL_TARBALL_SHA256"; then
		base_ok=1
	fi
fi

if [ $base_ok = 0 ]; then
	if [ -d "$tree/.git" ] && [ $force = 0 ] &&
	   { [ "$(gmem_tree_state)" = modified ] || [ -n "$(g status --porcelain)" ]; }; then
		gmem_die "$tree must be recreated for the new pin but has unexported work;" \
			"run kernel/export-patches.sh (or rerun with --force to discard it)"
	fi
	if [ -e "$tree" ]; then
		gmem_log "$tree is not a base for tarball $GMEM_KERNEL_TARBALL_SHA256; recreating"
		old="$tree.old.$$"
		mv "$tree" "$old"
		rm -rf "$old"
	fi
	gmem_log "unpacking $GMEM_KERNEL_TARBALL into $tree"
	mkdir "$tree"
	tar -xf "$GMEM_KERNEL_TARBALL" -C "$tree" --strip-components=1
	g init -q -b master
	g config gc.auto 0
	g config core.autocrlf false
	g config am.threeWay true
	g config user.name "$GIT_COMMITTER_NAME"
	g config user.email "$GIT_COMMITTER_EMAIL"
	gmem_log "committing the pristine tree"
	# -f: the tarball's own .gitignore must not hide any of its files from the base.
	g add -A -f .
	GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" \
		g commit -q -m "Linux $GMEM_KERNEL_UPSTREAM (Debian linux-source-$GMEM_KERNEL_SERIES $GMEM_KERNEL_PKG_VERSION)" \
		-m "Pristine tree from linux-source-$GMEM_KERNEL_SERIES.tar.xz, sha256 $GMEM_KERNEL_TARBALL_SHA256."
	g tag -a -m "gmem base: Linux $GMEM_KERNEL_UPSTREAM, tarball sha256 $GMEM_KERNEL_TARBALL_SHA256" \
		"$GMEM_KERNEL_BASE_TAG"
fi

# Leave no half-done am/rebase behind.
g am --abort >/dev/null 2>&1 || true
g rebase --abort >/dev/null 2>&1 || true

if [ -n "$(g status --porcelain --untracked-files=normal)" ]; then
	if [ $force = 0 ]; then
		g status --short | head -20 >&2
		gmem_die "$tree has uncommitted changes; commit and export them, or rerun with --force"
	fi
	g stash push -q -u -m "prepare-tree --force $(date -Is)"
	gmem_log "stashed uncommitted changes (git -C $tree stash list)"
fi

head=$(g rev-parse HEAD)
backup=
if [ "$head" != "$(g rev-parse "$GMEM_KERNEL_BASE_TAG^{commit}")" ]; then
	backup="refs/gmem/backup/$(date +%Y%m%d-%H%M%S)"
	g update-ref "$backup" "$head"
fi
g checkout -q -B master "$GMEM_KERNEL_BASE_TAG"
g reset -q --hard "$GMEM_KERNEL_BASE_TAG"
g clean -q -fd

n=0
while read -r patch; do
	case $patch in ''|'#'*) continue ;; esac
	# The cover letter (export-patches.sh) travels with the series but is not a patch.
	case $patch in 0000-*) continue ;; esac
	[ -f "$GMEM_KERNEL_DIR/patches/$patch" ] || gmem_die "kernel/series names a missing patch: $patch"
	if ! g am -q --committer-date-is-author-date "$GMEM_KERNEL_DIR/patches/$patch"; then
		g am --abort || true
		gmem_die "patch $patch does not apply on $GMEM_KERNEL_BASE_TAG + previous patches"
	fi
	n=$((n + 1))
done <"$GMEM_KERNEL_DIR/series"

# Applying is reproducible (fixed committer, committer date = author date): if the result is
# the old HEAD, nothing was lost and the backup is noise.
if [ -n "$backup" ]; then
	if [ "$(g rev-parse HEAD)" = "$head" ]; then
		g update-ref -d "$backup"
	else
		gmem_log "previous HEAD $head saved as $backup"
	fi
fi
gmem_stamp_write
gmem_log "tree ready: $tree = $GMEM_KERNEL_BASE_TAG + $n patch(es)"
echo "$tree"
