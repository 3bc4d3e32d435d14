#!/bin/bash
# Fetch the pinned kernel source (Debian package linux-source-7.3 from trixie-backports) into
# the cache, without touching the machine's apt configuration.  A second run is offline.
#
# usage: kernel/fetch-source.sh [--repin]
#   --repin   take whatever version the suite has now and rewrite kernel/VERSION with it
#
# The archive URI is taken at run time from the machine's own Debian source entry
# (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list|*.sources); apt runs with a private
# sources list, lists dir and package cache, and keeps signature checking on.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

repin=0
for arg; do
	case $arg in
	--repin) repin=1 ;;
	-h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) gmem_die "unknown argument: $arg" ;;
	esac
done

pkg="linux-source-$GMEM_KERNEL_SERIES"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

mkdir -p "$GMEM_SRC_CACHE"
exec 9>"$GMEM_SRC_CACHE/.lock"
flock 9

if [ $repin = 0 ] && gmem_tarball_ok; then
	gmem_log "cached and verified: $GMEM_KERNEL_TARBALL ($GMEM_KERNEL_PKG_VERSION)"
	echo "$GMEM_KERNEL_TARBALL"
	exit 0
fi
if [ $repin = 0 ] && [ -z "$GMEM_KERNEL_PKG_VERSION" ]; then
	gmem_die "kernel/VERSION pins no version yet; run with --repin"
fi

# Print the first URI of an enabled "deb" entry for a non-security suite of the machine's
# Debian archive.  Handles one-line .list files and deb822 .sources files.
debian_archive_uri() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		# deb [options] URI suite components...
		awk '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i+1) !~ /-security$/ && $(i+1) !~ /\/updates$/) { print $i; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'function flush() {
			if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "" && suites !~ /-security/) {
				split(uris, u, " "); print u[1]
			}
			types = uris = suites = enabled = ""
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		tolower($1) == "types:" { $1 = ""; types = $0 }
		tolower($1) == "uris:" { $1 = ""; sub(/^ +/, ""); uris = $0 }
		tolower($1) == "suites:" { $1 = ""; suites = $0 }
		tolower($1) == "enabled:" { enabled = tolower($2) }
		END { flush() }' "$f"
	done
}

fetch_deb() {
	local uri apt_dir
	uri=$(debian_archive_uri | head -n1)
	[ -n "$uri" ] || gmem_die "no Debian archive entry found in the machine's apt sources"
	case $uri in
	http://*|https://*|file:/*) ;;
	*) gmem_die "unsupported archive URI in apt sources: $uri" ;;
	esac
	apt_dir="$GMEM_SRC_CACHE/apt"
	rm -rf "$apt_dir"
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/download"
	echo "deb [signed-by=$keyring] $uri $GMEM_KERNEL_SUITE main" >"$apt_dir/sources.list"
	# apt drops privileges to _apt for downloads; let it write where it downloads to.
	if id _apt >/dev/null 2>&1; then
		chown _apt "$apt_dir/download"
	fi
	local -a apt_opts=(
		-o "Dir::Etc::SourceList=$apt_dir/sources.list"
		-o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$apt_dir/lists"
		-o "Dir::Cache=$apt_dir/cache"
		-o Acquire::Languages=none
	)
	gmem_log "apt update of $GMEM_KERNEL_SUITE from the machine's Debian archive ($uri)"
	apt-get "${apt_opts[@]}" -q update >&2
	local want=$pkg
	[ $repin = 1 ] || want="$pkg=$GMEM_KERNEL_PKG_VERSION"
	gmem_log "downloading $want"
	(cd "$apt_dir/download" && apt-get "${apt_opts[@]}" -q download "$want") >&2 ||
		gmem_die "could not download $want (if the suite moved on, run --repin)"
	deb=$(ls "$apt_dir/download"/"${pkg}"_*.deb)
	mv "$deb" "$GMEM_SRC_CACHE/"
	deb="$GMEM_SRC_CACHE/${deb##*/}"
	rm -rf "$apt_dir"
}

# Reuse a cached .deb if it matches the pin; otherwise go to the network.
deb=
if [ $repin = 0 ] && [ -n "$GMEM_KERNEL_DEB_SHA256" ]; then
	for d in "$GMEM_SRC_CACHE/${pkg}_"*.deb; do
		[ -f "$d" ] || continue
		if echo "$GMEM_KERNEL_DEB_SHA256  $d" | sha256sum --check --status; then
			deb=$d
			gmem_log "using cached $deb"
		fi
	done
fi
[ -n "$deb" ] || fetch_deb

deb_version=$(dpkg-deb --field "$deb" Version)
deb_sha=$(sha256sum "$deb" | cut -d' ' -f1)
if [ $repin = 0 ]; then
	[ "$deb_version" = "$GMEM_KERNEL_PKG_VERSION" ] ||
		gmem_die "got $pkg $deb_version, pinned $GMEM_KERNEL_PKG_VERSION"
	if [ -n "$GMEM_KERNEL_DEB_SHA256" ] && [ "$deb_sha" != "$GMEM_KERNEL_DEB_SHA256" ]; then
		gmem_die "$deb: sha256 $deb_sha, pinned $GMEM_KERNEL_DEB_SHA256"
	fi
fi

tmp=$(mktemp -d "$GMEM_SRC_CACHE/extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg -x "$deb" "$tmp"
src="$tmp/usr/src/linux-source-$GMEM_KERNEL_SERIES.tar.xz"
[ -f "$src" ] || gmem_die "$deb does not contain ${src#"$tmp"}"
tar_sha=$(sha256sum "$src" | cut -d' ' -f1)
if [ $repin = 0 ] && [ -n "$GMEM_KERNEL_TARBALL_SHA256" ] &&
   [ "$tar_sha" != "$GMEM_KERNEL_TARBALL_SHA256" ]; then
	gmem_die "tarball sha256 $tar_sha, pinned $GMEM_KERNEL_TARBALL_SHA256"
fi
mv "$src" "$GMEM_KERNEL_TARBALL"

if [ $repin = 1 ] || [ -z "$GMEM_KERNEL_TARBALL_SHA256" ] || [ -z "$GMEM_KERNEL_DEB_SHA256" ]; then
	upstream=$(tar -xOf "$GMEM_KERNEL_TARBALL" "linux-source-$GMEM_KERNEL_SERIES/Makefile" |
		awk -F' *= *' '$1 ~ /^(VERSION|PATCHLEVEL|SUBLEVEL)$/ { v[$1] = $2 }
			END { print v["VERSION"] "." v["PATCHLEVEL"] "." v["SUBLEVEL"] }')
	cat >"$GMEM_KERNEL_DIR/VERSION" <<EOF
# The pinned kernel: Debian binary package linux-source-\$GMEM_KERNEL_SERIES from the
# trixie-backports suite.  Written by fetch-source.sh --repin; checked on every use.
GMEM_KERNEL_SERIES=$GMEM_KERNEL_SERIES
GMEM_KERNEL_SUITE=$GMEM_KERNEL_SUITE
# Upstream version inside the tarball (Makefile VERSION.PATCHLEVEL.SUBLEVEL).
GMEM_KERNEL_UPSTREAM=$upstream
GMEM_KERNEL_PKG_VERSION=$deb_version
GMEM_KERNEL_DEB_SHA256=$deb_sha
GMEM_KERNEL_TARBALL_SHA256=$tar_sha
EOF
	gmem_log "pinned $pkg $deb_version (Linux $upstream) in kernel/VERSION"
fi
# Keep only the pinned .deb.
for d in "$GMEM_SRC_CACHE/${pkg}_"*.deb; do
	[ "$d" = "$deb" ] || rm -f "$d"
done
gmem_log "verified: $GMEM_KERNEL_TARBALL (sha256 $tar_sha)"
echo "$GMEM_KERNEL_TARBALL"
