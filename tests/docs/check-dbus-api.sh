#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Keeps docs/dbus-api.md from drifting: starts the real gmemd on a private
# bus, and compares the org.gmem1.* interfaces it introspects (Manager, and a
# Region it creates) with the ```xml blocks of the document, after
# normalising whitespace, attribute order and empty elements. Also checks
# that every KernelFeatures key (with its type), every CreateRegion option
# (with its type) and every org.gmem1.Error name is documented.
# Usage: check-dbus-api.sh DOC SOURCE-ROOT GMEM-TEST-ENV GMEMCTL
# (needs GMEMD and GMEM_DBUS_POLICY in the environment, as the integration tests)
set -eu

if [ "${1:-}" != --inner ]; then
        [ $# -eq 4 ] || { echo "usage: $0 DOC SOURCE-ROOT GMEM-TEST-ENV GMEMCTL" >&2; exit 2; }
        # Missing tools fail the test: tools/install-deps installs them
        # (systemd, libxml2-utils), and a skipped check is no check.
        for tool in busctl xmllint; do
                command -v $tool >/dev/null || { echo "$tool is not installed: run tools/install-deps" >&2; exit 1; }
        done
        if [ ! -w /dev/kvm ]; then
                echo "no writable /dev/kvm to create a region on" >&2
                exit 1
        fi
        exec "$3" -- "$0" --inner "$@"
fi
shift
doc=$1 src=$2 gmemctl=$4
: "${GMEM_BUS_ADDRESS:?not run under gmem-test-env}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() {
        echo "dbus-api.md: $*" >&2
        failed=1
}

# XML on stdin -> one canonical, indented form: whitespace between elements
# dropped, attributes sorted and <a/> == <a></a> (C14N), then re-indented.
normalize() {
        tr '\n\t' '  ' | sed -e 's/>[[:space:]]*</></g' -e 's/^[[:space:]]*//' |
                xmllint --nonet --c14n - | xmllint --nonet --format -
}

# The org.gmem1.* interface element named $2 from the XML file $1.
interface() {
        { echo '<node>'; xmllint --nonet --xpath "//interface[@name='$2']" "$1" 2>/dev/null; echo '</node>'; } |
                normalize
}

interface_names() {
        xmllint --nonet --xpath "//interface[starts-with(@name,'org.gmem1.')]/@name" "$1" 2>/dev/null |
                tr ' ' '\n' | sed -n 's/^name="\(.*\)"$/\1/p' | sort
}

bus() {
        busctl --address="$GMEM_BUS_ADDRESS" "$@"
}

# --- what the daemon says
bus introspect --xml-interface org.gmem1 /org/gmem1 > "$work/manager.xml"
created=$("$gmemctl" create 2M --name=doc-check --persist --json)
region=$(printf '%s\n' "$created" | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
[ -n "$region" ] || { echo "cannot tell the region path from: $created" >&2; exit 1; }
bus introspect --xml-interface org.gmem1 "$region" > "$work/region.xml"
# A Migration object: the region exported (no destination needs to come), on a unix socket,
# which every kernel has (the vm tier's has no TCP/IP).
bus call org.gmem1 /org/gmem1 org.gmem1.Manager ExportRegion 'oa{sv}' "$region" 1 listen s "unix:$work/export.sock" >/dev/null
migration=$(bus call org.gmem1 /org/gmem1 org.gmem1.Manager ListMigrations | grep -o '"/org/gmem1/migration/[0-9]*"' | tr -d '"')
[ -n "$migration" ] || { echo "ExportRegion made no Migration object" >&2; exit 1; }
bus introspect --xml-interface org.gmem1 "$migration" > "$work/migration.xml"
{
        echo '<node>'
        for f in "$work/manager.xml" "$work/region.xml" "$work/migration.xml"; do
                xmllint --nonet --xpath "//interface[starts-with(@name,'org.gmem1.')]" "$f"
        done
        echo '</node>'
} > "$work/live.xml"
bus --json=short get-property org.gmem1 /org/gmem1 org.gmem1.Manager KernelFeatures > "$work/features.json"
"$gmemctl" release "$region" >/dev/null

# --- what the document says
{ echo '<node>'; awk '/^```xml[[:space:]]*$/ { on = 1; next } /^```/ { on = 0 } on' "$doc"; echo '</node>'; } > "$work/doc.xml"
xmllint --nonet --noout "$work/doc.xml" || { echo "dbus-api.md: its xml blocks are not well-formed" >&2; exit 1; }

interface_names "$work/live.xml" > "$work/live.names"
interface_names "$work/doc.xml" > "$work/doc.names"
if ! diff -u --label daemon --label dbus-api.md "$work/live.names" "$work/doc.names"; then
        fail "the interfaces documented differ from those gmemd exports (diff above)"
fi
[ -s "$work/live.names" ] || fail "gmemd exported no org.gmem1.* interface"

for name in $(cat "$work/live.names"); do
        interface "$work/live.xml" "$name" > "$work/live.$name"
        interface "$work/doc.xml" "$name" > "$work/doc.$name"
        grep -q "<interface name=\"$name\">" "$work/live.$name" || fail "could not extract $name from gmemd's introspection"
        if ! diff -u --label "$name (gmemd)" --label "$name (dbus-api.md)" "$work/live.$name" "$work/doc.$name"; then
                fail "interface $name differs from gmemd's introspection (diff above: - gmemd, + document)"
        fi
done

# KernelFeatures keys, each with its type, as a table row "| `Key` | `type` |".
grep -o '"[A-Za-z0-9_]*":{"type":"[^"]*"' "$work/features.json" |
        sed 's/^"\([^"]*\)":{"type":"\([^"]*\)"$/\1 \2/' > "$work/features"
[ -s "$work/features" ] || fail "could not read KernelFeatures from gmemd"
while read -r key type; do
        grep -qF "| \`$key\` | \`$type\` |" "$doc" ||
                fail "KernelFeatures key '$key' (type $type) is not in its table"
done < "$work/features"

# CreateRegion options, from the contract's option table, as "| `key` | `type` |".
# Keys may contain '_' (numa_page_tables).
grep -o '{ "[a-z_]*", "[abdhinoqstuvxy{}()]*" }' "$src/common/bus-contract.c" |
        sed 's/^{ "\([^"]*\)", "\([^"]*\)" }$/\1 \2/' > "$work/options"
[ -s "$work/options" ] || fail "found no option table in common/bus-contract.c"
# ...and the other way round, so a key the pattern above cannot match is
# noticed rather than silently left unchecked.
awk '/^Options \(/ { on = 1 } /^Policies/ { on = 0 } on' "$doc" |
        sed -n 's/^| `\([^`]*\)` | `\([^`]*\)` |.*/\1 \2/p' > "$work/options.documented"
[ -s "$work/options.documented" ] || fail "found no CreateRegion options table"
while read -r key type; do
        grep -qxF "$key $type" "$work/options" || fail "documented option '$key' ($type) is not in gmemd's option table"
done < "$work/options.documented"
while read -r key type; do
        grep -qF "| \`$key\` | \`$type\` |" "$doc" ||
                fail "CreateRegion option '$key' (type $type) is not in the options table"
done < "$work/options"

# Error names: every one defined is documented, and no other is.
sed -n 's/^#define GMEM_ERROR_[A-Z_]* "\(org\.gmem1\.Error\.[A-Za-z]*\)"$/\1/p' "$src/common/bus-errors.h" | sort -u > "$work/errors.defined"
grep -o 'org\.gmem1\.Error\.[A-Za-z]*' "$doc" | sort -u > "$work/errors.documented"
[ -s "$work/errors.defined" ] || fail "found no error names in common/bus-errors.h"
if ! diff -u --label common/bus-errors.h --label dbus-api.md "$work/errors.defined" "$work/errors.documented"; then
        fail "the error names differ from common/bus-errors.h (diff above)"
fi
while read -r name; do
        grep -qF "| \`$name\` |" "$doc" || fail "error $name has no row in the errors table"
done < "$work/errors.defined"

[ $failed -eq 0 ] && echo "dbus-api.md matches gmemd: $(tr '\n' ' ' < "$work/live.names")"
exit $failed
