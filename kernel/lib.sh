# shellcheck shell=bash
# shellcheck disable=SC2034 # variables for the scripts that source this file
# Shared settings for the kernel/ scripts: where the cache, tree and build live.
# Sourced, never executed.  Every path can be overridden from the environment.

GMEM_KERNEL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GMEM_REPO_DIR=$(cd "$GMEM_KERNEL_DIR/.." && pwd)

# shellcheck source=VERSION
. "$GMEM_KERNEL_DIR/VERSION"

GMEM_CACHE_DIR=${GMEM_CACHE_DIR:-/var/cache/gmem}
# Downloaded .deb and the tarball it contains.
GMEM_SRC_CACHE=${GMEM_SRC_CACHE:-$GMEM_CACHE_DIR/src}
GMEM_KERNEL_TARBALL="$GMEM_SRC_CACHE/linux-source-$GMEM_KERNEL_SERIES.tar.xz"
# The git tree the series is applied to (base tag + one commit per patch).
GMEM_KERNEL_TREE=${GMEM_KERNEL_TREE:-$GMEM_CACHE_DIR/linux}
GMEM_KERNEL_BASE_TAG=gmem-base
# Out-of-tree build directories, one per config flavour (gmem, gmem-debug).  A build dir
# belongs to one source tree, so another tree gets its own by default.
if [ -z "${GMEM_BUILD_ROOT:-}" ]; then
	if [ "$GMEM_KERNEL_TREE" = "$GMEM_CACHE_DIR/linux" ]; then
		GMEM_BUILD_ROOT=$GMEM_CACHE_DIR/build
	else
		GMEM_BUILD_ROOT=$GMEM_KERNEL_TREE-build
	fi
fi
export CCACHE_DIR=${CCACHE_DIR:-$GMEM_CACHE_DIR/ccache}

gmem_die() {
	echo "${0##*/}: error: $*" >&2
	exit 1
}

gmem_log() {
	echo "${0##*/}: $*" >&2
}

# gmem_require_series_tree HINT: the kernel tree has the base tag and nothing uncommitted
# (HINT says how to commit it), as the scripts that rewrite or export the series need.
gmem_require_series_tree() {
	git -C "$GMEM_KERNEL_TREE" rev-parse -q --verify "refs/tags/$GMEM_KERNEL_BASE_TAG" >/dev/null ||
		gmem_die "$GMEM_KERNEL_TREE has no $GMEM_KERNEL_BASE_TAG tag; run kernel/prepare-tree.sh first"
	[ -z "$(git -C "$GMEM_KERNEL_TREE" status --porcelain --untracked-files=no)" ] ||
		gmem_die "$GMEM_KERNEL_TREE has uncommitted changes; commit them $1"
}

# Is the tarball in the cache and does it match the pinned hash?
gmem_tarball_ok() {
	[ -f "$GMEM_KERNEL_TARBALL" ] || return 1
	[ -n "${GMEM_KERNEL_TARBALL_SHA256:-}" ] || return 1
	echo "$GMEM_KERNEL_TARBALL_SHA256  $GMEM_KERNEL_TARBALL" | sha256sum --check --status
}

# Build directory for a flavour ("" or "debug").
gmem_build_dir() {
	if [ "${1:-}" = debug ]; then
		echo "$GMEM_BUILD_ROOT/gmem-debug"
	else
		echo "$GMEM_BUILD_ROOT/gmem"
	fi
}

# Hash of everything the prepared tree is made from: tarball, series and its patches.
gmem_series_hash() {
	{
		echo "$GMEM_KERNEL_TARBALL_SHA256"
		cat "$GMEM_KERNEL_DIR/series"
		local p
		while read -r p; do
			case $p in ''|'#'*) continue ;; esac
			cat "$GMEM_KERNEL_DIR/patches/$p" 2>/dev/null || echo "missing $p"
		done <"$GMEM_KERNEL_DIR/series"
	} | sha256sum | cut -d' ' -f1
}

# Remember which series the tree was prepared from, and at which HEAD.
gmem_stamp_write() {
	echo "$(gmem_series_hash) $(git -C "$GMEM_KERNEL_TREE" rev-parse HEAD)" \
		>"$GMEM_KERNEL_TREE/.git/gmem-prepared"
}

# Print the tree's state: missing, current (matches kernel/series), stale (the series changed
# and nobody committed in the tree since it was prepared) or modified (commits were made in the
# tree since; build what is there, do not reset it).
gmem_tree_state() {
	local hash head
	if ! [ -f "$GMEM_KERNEL_TREE/.git/gmem-prepared" ]; then
		echo missing
		return
	fi
	read -r hash head <"$GMEM_KERNEL_TREE/.git/gmem-prepared"
	if [ "$head" != "$(git -C "$GMEM_KERNEL_TREE" rev-parse HEAD)" ]; then
		echo modified
	elif [ "$hash" != "$(gmem_series_hash)" ]; then
		echo stale
	else
		echo current
	fi
}
