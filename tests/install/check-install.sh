#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install gmem as an operator would, into a DESTDIR, and check that every file
# systemd and dbus-daemon read landed where they read it and that the unit and
# the activation file start the gmemd that was installed. Two fresh build
# directories, so the main build's own configuration does not matter:
#   default  the default prefix (/usr/local), with the host's systemd.pc
#            (and dbus-1.pc if libdbus-1-dev is installed);
#   usr      --prefix=/usr with systemd.pc and dbus-1.pc hidden, so the fixed
#            fallback paths are the ones installed to and checked.
# Where they read is asked the same way (pkg-config, else the fixed paths),
# then confirmed by the tools themselves: systemctl --root enables the unit,
# systemd-sysusers --root creates the group, and the system bus configuration
# includes the policy directory and searches the activation directory.
#
# usage: check-install.sh MESON SOURCE_DIR
set -euo pipefail
meson=$1 srcdir=$2
for tool in pkg-config xmllint jq systemctl systemd-sysusers; do
        command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (tools/deps.txt)"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failures=0
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

pcvar() { # pcvar PACKAGE VARIABLE FALLBACK
        local v
        v=$(pkg-config --variable="$2" "$1" 2>/dev/null || true)
        echo "${v:-$3}"
}

# The system bus configuration includes POLICYDIR and searches SERVICEDIR
# (explicitly, or as the standard system service directory).
check_bus_reads() { # check_bus_reads NAME DATADIR POLICYDIR SERVICEDIR
        local name=$1 conf=$2/dbus-1/system.conf policydir=$3 servicedir=$4
        [ -f "$conf" ] || conf=/etc/dbus-1/system.conf
        if [ ! -f "$conf" ]; then
                bad "$name: no system bus configuration (package dbus)"
                return
        fi
        local dir found=0
        while read -r dir; do
                [[ $dir = /* ]] || dir=$(dirname "$conf")/$dir
                [ "$(realpath -m "$dir")" = "$(realpath -m "$policydir")" ] && found=1
        done < <(xmllint --nonet --xpath '//includedir/text()' "$conf"; echo)
        if [ $found = 1 ]; then ok "$name: $conf includes $policydir"; else bad "$name: $conf does not include $policydir"; fi
        local servicedirs standard
        servicedirs=$(xmllint --nonet --xpath '//servicedir/text()' "$conf" 2>/dev/null || true)
        standard=$(xmllint --nonet --xpath 'count(//standard_system_servicedirs)' "$conf")
        if grep -qxF "$servicedir" <<< "$servicedirs" ||
           { [ "$standard" != 0 ] && [ "$servicedir" = /usr/share/dbus-1/system-services ]; }; then
                ok "$name: $conf searches $servicedir"
        else
                bad "$name: $conf does not search $servicedir"
        fi
}

check_install() { # check_install NAME [meson setup options...]
        local name=$1
        shift
        local build=$tmp/build-$name dest=$tmp/dest-$name log=$tmp/$name.log
        local unitdir sysusersdir tmpfilesdir dbus_datadir dbus_policydir dbus_servicedir
        unitdir=$(pcvar systemd systemdsystemunitdir /usr/lib/systemd/system)
        sysusersdir=$(pcvar systemd sysusersdir /usr/lib/sysusers.d)
        tmpfilesdir=$(pcvar systemd tmpfilesdir /usr/lib/tmpfiles.d)
        dbus_datadir=$(pcvar dbus-1 datadir /usr/share)
        dbus_policydir=$dbus_datadir/dbus-1/system.d
        dbus_servicedir=$(pcvar dbus-1 system_bus_services_dir /usr/share/dbus-1/system-services)
        echo "--- $name: meson setup ${*:-(no options)} && meson install --destdir"
        echo "systemd reads units from $unitdir, sysusers.d from $sysusersdir;" \
             "the system bus reads policy from $dbus_policydir, activation files from $dbus_servicedir"
        check_bus_reads "$name" "$dbus_datadir" "$dbus_policydir" "$dbus_servicedir"

        if ! "$meson" setup "$build" "$srcdir" -Dtests=false "$@" > "$log" 2>&1 ||
           ! "$meson" install -C "$build" --destdir "$dest" >> "$log" 2>&1; then
                cat "$log"
                bad "$name: meson setup or install failed"
                return
        fi
        local prefix gmemd
        prefix=$("$meson" introspect "$build" --buildoptions | jq -r '.[] | select(.name == "prefix") | .value')
        gmemd=$("$meson" introspect "$build" --installed | jq -r 'to_entries[] | select(.key | endswith("/gmemd")) | .value')
        if [ -z "$gmemd" ] || [ ! -x "$dest$gmemd" ]; then
                bad "$name: gmemd is not installed ($gmemd)"
        fi

        local unit=$unitdir/gmemd.service activation=$dbus_servicedir/org.gmem1.service
        local policy=$dbus_policydir/org.gmem1.conf sysusers=$sysusersdir/gmem.conf f
        for f in "$unit" "$activation" "$policy" "$sysusers"; do
                if [ -f "$dest$f" ]; then ok "$name: $f"; else bad "$name: $f is not installed"; fi
        done

        # Nothing of systemd's or dbus's anywhere else, e.g. $prefix/share/dbus-1.
        local stray
        stray=$(find "$dest" -type f -printf '/%P\n' |
                grep -E '/(dbus-1|systemd|sysusers\.d|tmpfiles\.d)/' |
                grep -vxF -e "$unit" -e "$activation" -e "$policy" -e "$sysusers" |
                grep -vE "^$tmpfilesdir/[^/]+\.conf$") || true
        [ -z "$stray" ] || bad "$name: installed where the system does not read them: ${stray//$'\n'/ }"
        if [ "$prefix" != /usr ] && [ -e "$dest$prefix/share/dbus-1" ]; then
                bad "$name: $prefix/share/dbus-1 exists; the system bus does not read it"
        fi

        # The unit and the activation file start the installed gmemd.
        local exec svc
        exec=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$dest$unit" 2>/dev/null || true)
        if [ "$exec" = "$gmemd" ]; then
                ok "$name: gmemd.service ExecStart=$exec"
        else
                bad "$name: gmemd.service ExecStart= is '$exec', installed gmemd is '$gmemd'"
        fi
        exec=$(sed -n 's/^Exec=\([^ ]*\).*/\1/p' "$dest$activation" 2>/dev/null || true)
        svc=$(sed -n 's/^SystemdService=//p' "$dest$activation" 2>/dev/null || true)
        if [ "$exec" = "$gmemd" ] && [ "$svc" = gmemd.service ] &&
           grep -qx 'Name=org.gmem1' "$dest$activation"; then
                ok "$name: org.gmem1.service Exec=$exec SystemdService=$svc"
        else
                bad "$name: org.gmem1.service names '$exec' (installed gmemd is '$gmemd') and unit '$svc'"
        fi

        # The policy is well-formed and lets root own the name.
        local owners
        if owners=$(xmllint --nonet --xpath 'count(/busconfig/policy[@user="root"]/allow[@own="org.gmem1"])' \
                    "$dest$policy" 2>&1) && [ "$owners" = 1 ]; then
                ok "$name: org.gmem1.conf is well-formed and lets root own org.gmem1"
        else
                bad "$name: org.gmem1.conf: $owners"
        fi

        # What an operator runs next works on the DESTDIR as on /.
        local out
        if out=$(systemctl --root="$dest" enable gmemd.service 2>&1) &&
           [ -L "$dest/etc/systemd/system/multi-user.target.wants/gmemd.service" ]; then
                ok "$name: systemctl enable finds gmemd.service"
        else
                bad "$name: systemctl --root enable gmemd.service: $out"
        fi
        if out=$(systemd-sysusers --root="$dest" 2>&1) && grep -q '^gmem:' "$dest/etc/group"; then
                ok "$name: systemd-sysusers creates group gmem"
        else
                bad "$name: systemd-sysusers --root did not create group gmem: $out"
        fi
}

check_install default

# Every .pc file the build needs, but not systemd.pc and dbus-1.pc.
mkdir "$tmp/pc"
IFS=: read -ra pcdirs <<< "$(pkg-config --variable pc_path pkg-config)"
for d in "${pcdirs[@]}"; do
        for f in "$d"/*.pc; do
                case ${f##*/} in systemd.pc | dbus-1.pc) continue ;; esac
                # The first of a name in the search path wins, as for pkg-config.
                if [ -e "$f" ] && [ ! -e "$tmp/pc/${f##*/}" ]; then ln -s "$f" "$tmp/pc/"; fi
        done
done
PKG_CONFIG_LIBDIR=$tmp/pc PKG_CONFIG_PATH='' check_install usr --prefix=/usr

if [ $failures != 0 ]; then
        echo "$failures check(s) failed"
        exit 1
fi
echo "ok: installs put every unit, policy, activation and sysusers file where the system reads it"
