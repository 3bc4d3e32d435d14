#!/bin/bash
# Check that every symbol a config fragment asks for ended up in the final .config.
# merge_config.sh and olddefconfig drop a symbol silently when its dependencies are not
# met; this fails loudly instead.  Later fragments override earlier ones.
#
# usage: kernel/check-config.sh BUILD_DIR/.config FRAGMENT...
set -euo pipefail

config=${1:?usage: check-config.sh .config fragment...}
shift
[ $# -gt 0 ] || { echo "check-config.sh: no fragments given" >&2; exit 2; }

awk '
# Fragments: remember the last requested value of each symbol.
FILENAME != cfg {
	if (match($0, /^CONFIG_[A-Za-z0-9_]+=/)) {
		sym = substr($0, 1, RLENGTH - 1)
		want[sym] = substr($0, RLENGTH + 1)
		where[sym] = FILENAME ":" FNR
	} else if (match($0, /^# CONFIG_[A-Za-z0-9_]+ is not set/)) {
		sym = $2
		want[sym] = "n"
		where[sym] = FILENAME ":" FNR
	}
	next
}
# The final .config.
{
	if (match($0, /^CONFIG_[A-Za-z0-9_]+=/))
		have[substr($0, 1, RLENGTH - 1)] = substr($0, RLENGTH + 1)
}
END {
	bad = 0
	for (sym in want) {
		got = (sym in have) ? have[sym] : "n"
		w = want[sym]
		if (w == "n" && got == "n")
			continue
		if (w != got) {
			printf "check-config: %s=%s requested (%s) but .config has %s\n", \
				sym, w, where[sym], got == "n" ? "it unset" : sym "=" got > "/dev/stderr"
			bad++
		}
	}
	if (bad) {
		printf "check-config: %d requested symbol(s) not set; fix the fragment (missing dependency?)\n", bad > "/dev/stderr"
		exit 1
	}
}' cfg="$config" "$@" "$config"
echo "check-config: all $(cat "$@" | grep -cE '^(CONFIG_|# CONFIG_.* is not set)') requested settings present in $config"
