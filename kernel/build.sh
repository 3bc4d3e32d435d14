#!/bin/bash
# Build the gmem test kernel (bzImage + uAPI headers) out of tree, with ccache, and
# optionally KVM selftests that run inside the VM.
#
# usage: kernel/build.sh [--debug] [--prepare] [--selftests] [--selftest NAME]... [-j N]
#   --debug          merge config/debug.config too (lockdep, DEBUG_VM, KFENCE); own build dir
#   --prepare        (re)prepare the tree from kernel/series first, even if it looks current
#   --selftests      build the default KVM selftests ($default_selftests)
#   --selftest NAME  build KVM selftest NAME (tools/testing/selftests/kvm/NAME, e.g.
#                    x86/numa_aware_page_tables_test); repeatable
#   --config-only    stop after writing and checking .config
#   --no-kernel      skip configure + bzImage (headers and selftests only)
#   -j N             parallel jobs (default: nproc)
#
# Environment: GMEM_CACHE_DIR (default /var/cache/gmem), GMEM_KERNEL_TREE, GMEM_BUILD_ROOT,
# CCACHE_DIR (default $GMEM_CACHE_DIR/ccache), CCACHE_DISABLE=1 for a build without ccache.
# Prints the bzImage path (and the selftests dir) on stdout at the end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

default_selftests="guest_memfd_test x86/numa_aware_page_tables_test guest_memfd_numa_balancing_test guest_memfd_missing_test guest_memfd_demand_paging_test demand_paging_test guest_memfd_unmapped_test"
flavour=
prepare=0
kernel=1
config_only=0
jobs=$(nproc)
selftests=()
while [ $# -gt 0 ]; do
	case $1 in
	--debug) flavour=debug ;;
	--prepare) prepare=1 ;;
	--selftests) read -ra s <<<"$default_selftests"; selftests+=("${s[@]}") ;;
	--selftest) shift; selftests+=("${1:?--selftest needs a name}") ;;
	--selftest=*) selftests+=("${1#*=}") ;;
	--no-kernel) kernel=0 ;;
	--config-only) config_only=1 ;;
	-j) shift; jobs=${1:?-j needs a number} ;;
	-j*) jobs=${1#-j} ;;
	-h|--help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) gmem_die "unknown argument: $1" ;;
	esac
	shift
done

state=$(gmem_tree_state)
if [ $prepare = 1 ] || [ "$state" = missing ] || [ "$state" = stale ]; then
	gmem_log "kernel tree is $state; preparing it"
	"$GMEM_KERNEL_DIR/prepare-tree.sh" >/dev/null
elif [ "$state" = modified ]; then
	gmem_log "note: $GMEM_KERNEL_TREE has commits since it was prepared; building it as it is" \
		"(kernel/export-patches.sh puts them into kernel/series)"
fi

build=$(gmem_build_dir "$flavour")
mkdir -p "$build" "$CCACHE_DIR"
# Kbuild rebuilds everything when a build dir is pointed at another source tree: refuse.
srctree=$(cd "$GMEM_KERNEL_TREE" && pwd -P)
if [ -f "$build/.gmem-srctree" ] && [ "$(cat "$build/.gmem-srctree")" != "$srctree" ]; then
	gmem_die "$build was built from $(cat "$build/.gmem-srctree"), not $srctree;" \
		"set GMEM_BUILD_ROOT for this tree"
fi
echo "$srctree" >"$build/.gmem-srctree"
# A shared cache for all flavours; 5G holds a few full builds.
[ -f "$CCACHE_DIR/ccache.conf" ] || echo "max_size = 5G" >"$CCACHE_DIR/ccache.conf"

fragments=("$GMEM_KERNEL_DIR/config/gmem.config")
[ "$flavour" = debug ] && fragments+=("$GMEM_KERNEL_DIR/config/debug.config")

kmake() {
	# LOCALVERSION= (empty): no "+" for a git tree; the release is exactly 7.3.x-gmem.
	make -C "$GMEM_KERNEL_TREE" O="$build" CC="ccache gcc" HOSTCC="ccache gcc" \
		LOCALVERSION= -j"$jobs" "$@"
}

# Regenerate .config only when a fragment or the tree changed: rewriting it on every
# build would make incremental builds slower.
config_stamp=$(cat "${fragments[@]}" "$GMEM_KERNEL_DIR/check-config.sh" |
	cat - <(git -C "$GMEM_KERNEL_TREE" rev-parse HEAD) | sha256sum | cut -d' ' -f1)
if [ $kernel = 1 ]; then
	if ! [ -f "$build/.config" ] || [ "$(cat "$build/.gmem-config-stamp" 2>/dev/null)" != "$config_stamp" ]; then
		gmem_log "configuring $build: tinyconfig + ${fragments[*]##*/}"
		kmake -s tinyconfig
		(cd "$build" && "$GMEM_KERNEL_TREE/scripts/kconfig/merge_config.sh" -m -O "$build" \
			"$build/.config" "${fragments[@]}") >"$build/merge_config.log" 2>&1 ||
			{ cat "$build/merge_config.log" >&2; gmem_die "merge_config.sh failed"; }
		kmake -s olddefconfig
		"$GMEM_KERNEL_DIR/check-config.sh" "$build/.config" "${fragments[@]}" >&2
		echo "$config_stamp" >"$build/.gmem-config-stamp"
	fi
	if [ $config_only = 1 ]; then
		echo "config: $build/.config"
		exit 0
	fi
	gmem_log "building bzImage in $build (make -j$jobs, CCACHE_DIR=$CCACHE_DIR)"
	start=$(date +%s)
	kmake bzImage
	gmem_log "bzImage built in $(( $(date +%s) - start ))s"
fi

# uAPI headers for the selftests and for the project's header check.
kmake -s headers

if [ ${#selftests[@]} -gt 0 ]; then
	out="$build/kselftest/kvm"
	mkdir -p "$out"
	targets=()
	for t in "${selftests[@]}"; do targets+=("$out/$t"); done
	gmem_log "building KVM selftests: ${selftests[*]}"
	make -C "$GMEM_KERNEL_TREE/tools/testing/selftests/kvm" -j"$jobs" \
		CC="ccache gcc" OUTPUT="$out" KHDR_INCLUDES="-isystem $build/usr/include" \
		"${targets[@]}"
	echo "selftests: $out"
fi
if [ $kernel = 1 ]; then
	echo "kernel: $(kmake -s kernelrelease)"
fi
echo "bzImage: $build/arch/x86/boot/bzImage"
