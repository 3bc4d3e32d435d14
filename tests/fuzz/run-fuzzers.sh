#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build the libFuzzer harnesses (clang, ASan + UBSan) in build-fuzz and run
# each for SECONDS (default 60) on a scratch copy of its corpus. New inputs
# stay in build-fuzz/fuzz-corpus/<target>; a crash leaves crash-* there and
# makes this script fail: add the input to tests/fuzz/corpus/<target>/ once
# the bug is fixed, so the regression test keeps it fixed.
# Usage: tests/fuzz/run-fuzzers.sh [SECONDS]
set -eu

seconds=${1:-60}
case $seconds in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${GMEM_FUZZ_BUILD:-$top/build-fuzz}
targets="config parse-size parse-node-list migrate-proto"

if [ ! -f "$build/build.ninja" ]; then
        CC=clang meson setup "$build" "$top" -Dfuzz=true -Db_lundef=false
fi
ninja -C "$build" $(for t in $targets; do echo "tests/fuzz/fuzz-$t"; done)

failed=0
for t in $targets; do
        work=$build/fuzz-corpus/$t
        mkdir -p "$work"
        echo "== fuzz-$t for ${seconds}s"
        # The seed corpus is read-only input; new finds go to $work.
        if ! (cd "$work" && "$build/tests/fuzz/fuzz-$t" -max_total_time="$seconds" \
                        -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
                        -artifact_prefix="$work/" "$work" "$top/tests/fuzz/corpus/$t"); then
                echo "fuzz-$t FAILED: see $work/crash-* (or timeout-*, oom-*)" >&2
                failed=1
        fi
done
exit $failed
