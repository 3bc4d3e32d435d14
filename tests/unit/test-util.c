/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of common/util.c's pure helpers: size and uint parsing, byte
 * formatting and node lists, including every error class. */
#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "unit.h"
#include "util.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)

static void assert_size(const char *s, uint64_t want)
{
        uint64_t v = 0;
        int r = parse_size(s, &v);

        if (r < 0 || v != want) {
                fprintf(stderr, "parse_size(\"%s\") = %d, %" PRIu64 "; want %" PRIu64 "\n", s, r, v, want);
                abort();
        }
}

static void assert_size_fails(const char *s, int want)
{
        uint64_t v = 12345;
        int r = parse_size(s, &v);

        if (r != want || v != 12345) {
                fprintf(stderr, "parse_size(\"%s\") = %d (value %" PRIu64 "); want %d and no value\n",
                        s ? s : "(null)", r, v, want);
                abort();
        }
}

static void test_parse_size(void)
{
        assert_size("0", 0);
        assert_size("4096", 4096);
        assert_size("5B", 5);
        assert_size("64K", 64 * KiB);
        assert_size("64KiB", 64 * KiB);
        assert_size("2M", 2 * MiB);
        assert_size("2MiB", 2 * MiB);
        assert_size("1G", GiB);
        assert_size("1GiB", GiB);
        assert_size("3T", 3 * TiB);
        assert_size("3TiB", 3 * TiB);
        assert_size("007M", 7 * MiB);
        assert_size("18446744073709551615", UINT64_MAX);
        /* The largest value each unit can express, and one more. */
        assert_size("16777215T", (UINT64_MAX >> 40) << 40);
        assert_size_fails("16777216T", -ERANGE);
        assert_size("17179869183G", (UINT64_MAX >> 30) << 30);
        assert_size_fails("17179869184G", -ERANGE);
        assert_size_fails("18014398509481984K", -ERANGE);
        assert_size_fails("18446744073709551616", -ERANGE);
        assert_size_fails("99999999999999999999999999M", -ERANGE);

        assert_size_fails(NULL, -EINVAL);
        assert_size_fails("", -EINVAL);
        assert_size_fails("G", -EINVAL);
        assert_size_fails("abc", -EINVAL);
        assert_size_fails("-1", -EINVAL);
        assert_size_fails("+1", -EINVAL);
        assert_size_fails(" 1", -EINVAL);
        assert_size_fails("1 ", -EINVAL);
        assert_size_fails("1 G", -EINVAL);
        assert_size_fails("1k", -EINVAL); /* units are upper case */
        assert_size_fails("1g", -EINVAL);
        assert_size_fails("1GB", -EINVAL);
        assert_size_fails("1Gi", -EINVAL);
        assert_size_fails("1GiBx", -EINVAL);
        assert_size_fails("1.5G", -EINVAL);
        assert_size_fails("0x10", -EINVAL);
        assert_size_fails("1P", -EINVAL);
}

static void test_parse_uint(void)
{
        unsigned v = 7;

        ASSERT_OK(parse_uint("0", &v));
        ASSERT_EQ(v, 0);
        ASSERT_OK(parse_uint("42", &v));
        ASSERT_EQ(v, 42);
        ASSERT_OK(parse_uint("4294967295", &v));
        ASSERT_EQ(v, UINT32_MAX);

        v = 7;
        ASSERT_EQ(parse_uint("4294967296", &v), -ERANGE);
        ASSERT_EQ(parse_uint("99999999999999999999999", &v), -ERANGE);
        ASSERT_EQ(parse_uint(NULL, &v), -EINVAL);
        ASSERT_EQ(parse_uint("", &v), -EINVAL);
        ASSERT_EQ(parse_uint("-1", &v), -EINVAL);
        ASSERT_EQ(parse_uint("+1", &v), -EINVAL);
        ASSERT_EQ(parse_uint(" 1", &v), -EINVAL);
        ASSERT_EQ(parse_uint("1 ", &v), -EINVAL);
        ASSERT_EQ(parse_uint("12a", &v), -EINVAL);
        ASSERT_EQ(parse_uint("1K", &v), -EINVAL);
        ASSERT_EQ(v, 7); /* untouched on every failure */
}

static void test_parse_u64(void)
{
        uint64_t v = 7;

        ASSERT_OK(parse_u64("0", &v));
        ASSERT(v == 0);
        ASSERT_OK(parse_u64("4294967296", &v));
        ASSERT(v == 4294967296ULL);
        ASSERT_OK(parse_u64("18446744073709551615", &v));
        ASSERT(v == UINT64_MAX);

        v = 7;
        ASSERT_EQ(parse_u64("18446744073709551616", &v), -ERANGE);
        ASSERT_EQ(parse_u64(NULL, &v), -EINVAL);
        ASSERT_EQ(parse_u64("", &v), -EINVAL);
        ASSERT_EQ(parse_u64("-1", &v), -EINVAL);
        ASSERT_EQ(parse_u64(" 1", &v), -EINVAL);
        ASSERT_EQ(parse_u64("1 ", &v), -EINVAL);
        ASSERT_EQ(parse_u64("12a", &v), -EINVAL);
        ASSERT(v == 7); /* untouched on every failure */
}

static void assert_format(uint64_t bytes, const char *want)
{
        char buf[FORMAT_BYTES_MAX];

        ASSERT(format_bytes(buf, sizeof(buf), bytes) == buf);
        ASSERT_STREQ(buf, want);
}

static void test_format_bytes(void)
{
        char small[4];

        assert_format(0, "0 B");
        assert_format(1, "1 B");
        assert_format(1023, "1023 B");
        assert_format(1024, "1.0 KiB");
        assert_format(1536, "1.5 KiB");
        assert_format(2 * MiB, "2.0 MiB");
        assert_format(GiB + GiB / 2, "1.5 GiB");
        assert_format(64 * GiB, "64.0 GiB");
        assert_format(3 * TiB, "3.0 TiB");
        assert_format(UINT64_C(1) << 50, "1.0 PiB");
        assert_format(UINT64_MAX, "16.0 EiB"); /* EiB is the last unit */

        /* Truncates to the buffer and stays NUL-terminated. */
        memset(small, 'x', sizeof(small));
        ASSERT(format_bytes(small, sizeof(small), 1536) == small);
        ASSERT_STREQ(small, "1.5");
}

static void assert_nodes(const char *s, const unsigned *want, size_t n_want)
{
        _cleanup_free_ unsigned *nodes = NULL;
        size_t n = 0;
        int r = parse_node_list(s, &nodes, &n);

        if (r < 0 || n != n_want || memcmp(nodes, want, n * sizeof(*want)) != 0) {
                fprintf(stderr, "parse_node_list(\"%s\") = %d with %zu node(s):", s, r, n);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        fprintf(stderr, " %u", nodes[i]);
                fprintf(stderr, "; want %zu node(s)\n", n_want);
                abort();
        }
}

static void assert_nodes_fail(const char *s, int want)
{
        unsigned *nodes = (unsigned *) 0x1;
        size_t n = 99;
        int r = parse_node_list(s, &nodes, &n);

        if (r != want || nodes != (unsigned *) 0x1 || n != 99) {
                fprintf(stderr, "parse_node_list(\"%s\") = %d; want %d and no output\n", s ? s : "(null)", r, want);
                abort();
        }
}

static void test_parse_node_list(void)
{
        assert_nodes("0", (unsigned[]) { 0 }, 1);
        assert_nodes("5", (unsigned[]) { 5 }, 1);
        assert_nodes("0,2", (unsigned[]) { 0, 2 }, 2);
        assert_nodes("0-3", (unsigned[]) { 0, 1, 2, 3 }, 4);
        assert_nodes("0-1,4", (unsigned[]) { 0, 1, 4 }, 3);
        assert_nodes("2-2", (unsigned[]) { 2 }, 1);
        assert_nodes("007", (unsigned[]) { 7 }, 1);
        assert_nodes("1023", (unsigned[]) { 1023 }, 1);
        /* Sorted, duplicates (also from overlapping ranges) collapsed. */
        assert_nodes("3,1,2", (unsigned[]) { 1, 2, 3 }, 3);
        assert_nodes("1,1,1", (unsigned[]) { 1 }, 1);
        assert_nodes("4,0-2,1-5", (unsigned[]) { 0, 1, 2, 3, 4, 5 }, 6);

        _cleanup_free_ unsigned *all = NULL;
        size_t n_all;
        ASSERT_OK(parse_node_list("0-1023", &all, &n_all));
        ASSERT_EQ(n_all, 1024);
        for (size_t i = 0; i < n_all; i++)
                ASSERT_EQ(all[i], i);

        assert_nodes_fail("1024", -ERANGE);
        assert_nodes_fail("0-1024", -ERANGE);
        assert_nodes_fail("3-1", -ERANGE);
        assert_nodes_fail("99999999999999999999999", -ERANGE);

        assert_nodes_fail(NULL, -EINVAL);
        assert_nodes_fail("", -EINVAL);
        assert_nodes_fail(",", -EINVAL);
        assert_nodes_fail("0,", -EINVAL);
        assert_nodes_fail(",0", -EINVAL);
        assert_nodes_fail("1,,2", -EINVAL);
        assert_nodes_fail("0-", -EINVAL);
        assert_nodes_fail("-1", -EINVAL);
        assert_nodes_fail("0--1", -EINVAL);
        assert_nodes_fail("0-1-2", -EINVAL);
        assert_nodes_fail("a", -EINVAL);
        assert_nodes_fail("1a", -EINVAL);
        assert_nodes_fail(" 1", -EINVAL);
        assert_nodes_fail("1 ,2", -EINVAL);
        assert_nodes_fail("1, 2", -EINVAL);
        assert_nodes_fail("+1", -EINVAL);
        assert_nodes_fail("0x1", -EINVAL);
}

/* Repeating ranges costs nothing: a 1 MiB list of "0-1023," must parse
 * within 128 MiB of address space (a list grown per node needs ~600 MiB). */
static void test_parse_node_list_bounded(void)
{
        static const char range[] = "0-1023,";
        size_t reps = (1 << 20) / (sizeof(range) - 1);
        _cleanup_free_ char *s = malloc(reps * (sizeof(range) - 1) + 1);
        int status;
        pid_t pid;

        ASSERT(s);
        for (size_t i = 0; i < reps; i++)
                memcpy(s + i * (sizeof(range) - 1), range, sizeof(range) - 1);
        s[reps * (sizeof(range) - 1) - 1] = '\0'; /* drop the last comma */

        pid = fork();
        ASSERT_OK(pid);
        if (pid == 0) {
                struct rlimit limit = { .rlim_cur = 128 << 20, .rlim_max = 128 << 20 };
                unsigned *nodes;
                size_t n;

                if (setrlimit(RLIMIT_AS, &limit) < 0)
                        _exit(2);
                if (parse_node_list(s, &nodes, &n) < 0 || n != 1024 || nodes[1023] != 1023)
                        _exit(1);
                _exit(0);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
}

static void test_streq_ptr(void)
{
        ASSERT(streq_ptr(NULL, NULL));
        ASSERT(!streq_ptr("a", NULL));
        ASSERT(!streq_ptr(NULL, "a"));
        ASSERT(streq_ptr("a", "a"));
        ASSERT(!streq_ptr("a", "b"));
}

int main(void)
{
        test_parse_size();
        test_parse_uint();
        test_parse_u64();
        test_format_bytes();
        test_parse_node_list();
        test_parse_node_list_bounded();
        test_streq_ptr();
        return 0;
}
