#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Check that libgmem exports exactly the symbols of libgmem.sym, and that each
# of them is declared in gmem.h. Usage: check-symbols.sh LIBRARY SYMFILE HEADER
set -eu

lib=$1 sym=$2 header=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined dynamic symbols, without the version node itself (type A).
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/exported"
sed -n 's/^[[:space:]]*\(gmem_[a-z0-9_]*\);$/\1/p' "$sym" | sort -u >"$tmp/listed"

status=0
if ! cmp -s "$tmp/exported" "$tmp/listed"; then
        echo "exported symbols differ from $sym (< exported only, > listed only):"
        diff "$tmp/exported" "$tmp/listed" | grep '^[<>]' || true
        status=1
fi
while read -r s; do
        if ! grep -Eq "[^a-z0-9_]$s\(" "$header"; then
                echo "$s is in $sym but not declared in $header"
                status=1
        fi
done <"$tmp/listed"
[ "$status" -eq 0 ] && echo "$(wc -l <"$tmp/listed") symbols exported, all listed and declared"
exit "$status"
