#!/usr/bin/awk -f
# SPDX-License-Identifier: LGPL-2.1-or-later
# A strict reader of the Prometheus text exposition format (0.0.4), as
# node_exporter's textfile collector reads it: HELP and TYPE at most once per
# family and before its samples, a family's samples together, metric and label
# names, escaped label values, Go float values, no duplicate series, no blank
# lines. Prints each violation with its line number; exits 1 on any.
function fail(msg) {
        printf "line %d: %s: %s\n", NR, msg, $0 > "/dev/stderr"
        errors++
}
BEGIN {
        name_re = "^[a-zA-Z_:][a-zA-Z0-9_:]*$"
        label = "[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
        labels_re = "^\\{" label "(," label ")*,?\\}"
        value_re = "^ ([-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?|NaN|[-+]Inf)( -?[0-9]+)?$"
}
/^$/ { fail("blank line"); next }
/^# HELP / {
        if ($3 !~ name_re) fail("bad metric name in HELP")
        if (help[$3]++) fail("second HELP for " $3)
        if ($3 in sampled) fail("HELP after the samples of " $3)
        next
}
/^# TYPE / {
        if ($3 !~ name_re) fail("bad metric name in TYPE")
        if (NF != 4 || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/) fail("bad TYPE line")
        if (type[$3]++) fail("second TYPE for " $3)
        if ($3 in sampled) fail("TYPE after the samples of " $3)
        next
}
/^#/ { next }
{
        if (!match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) { fail("bad metric name"); next }
        name = substr($0, 1, RLENGTH)
        rest = substr($0, RLENGTH + 1)
        labels = ""
        if (substr(rest, 1, 1) == "{") {
                if (!match(rest, labels_re)) { fail("bad labels"); next }
                labels = substr(rest, 1, RLENGTH)
                rest = substr(rest, RLENGTH + 1)
        }
        if (rest !~ value_re) fail("bad value")
        if (!(name in type)) fail("sample of " name " without a TYPE line before it")
        if (name != last && (name in sampled)) fail("samples of " name " are not together")
        if ((name labels) in series) fail("duplicate series")
        series[name labels] = 1
        sampled[name] = 1
        last = name
        samples++
}
END {
        if (samples == 0) { print "no samples" > "/dev/stderr"; errors++ }
        exit errors > 0
}
