/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of daemon/config.c: a valid file, every key's type errors (each
 * must name the key), unknown keys, trailing garbage, limits and loading. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "unit.h"

#define GiB (UINT64_C(1) << 30)

static char msg[512];

static int parse(struct config *c, const char *text)
{
        config_init(c);
        msg[0] = '\0';
        return config_parse(c, text, "test.json", msg, sizeof(msg));
}

/* Parsing @text fails with -EINVAL and exactly @want as the message. */
static void assert_rejects(const char *text, const char *want)
{
        struct config c;
        int r = parse(&c, text);

        if (r != -EINVAL || strcmp(msg, want) != 0) {
                fprintf(stderr, "config_parse(%s) = %d, \"%s\"\n want -EINVAL, \"%s\"\n", text, r, msg, want);
                abort();
        }
        config_done(&c);
}

static void test_valid(void)
{
        struct config c;

        config_init(&c);
        ASSERT_EQ(c.log_level, -1);
        ASSERT(!c.allowed_group);
        ASSERT_U64_EQ(c.max_bytes_per_user, 0);
        ASSERT_EQ(c.max_regions_per_user, 0);

        ASSERT_OK(parse(&c, "{ \"log_level\": \"debug\", \"allowed_group\": \"kvm\",\n"
                            "  \"limits\": { \"max_bytes_per_user\": \"64G\", \"max_regions_per_user\": 8 } }\n"));
        ASSERT_EQ(c.log_level, LOG_DEBUG);
        ASSERT_STREQ(c.allowed_group, "kvm");
        ASSERT_U64_EQ(c.max_bytes_per_user, 64 * GiB);
        ASSERT_EQ(c.max_regions_per_user, 8);
        config_done(&c);
        ASSERT(!c.allowed_group);
        ASSERT_EQ(c.log_level, -1);

        /* Limits as plain integers, at their extremes. */
        ASSERT_OK(parse(&c, "{\"limits\": {\"max_bytes_per_user\": 68719476736, \"max_regions_per_user\": 4294967295}}"));
        ASSERT_U64_EQ(c.max_bytes_per_user, 64 * GiB);
        ASSERT_EQ(c.max_regions_per_user, UINT32_MAX);
        config_done(&c);
        ASSERT_OK(parse(&c, "{\"limits\": {\"max_bytes_per_user\": 0, \"max_regions_per_user\": 0}}"));
        ASSERT_U64_EQ(c.max_bytes_per_user, 0);
        config_done(&c);
        ASSERT_OK(parse(&c, "{\"limits\": {\"max_bytes_per_user\": \"4096\"}}"));
        ASSERT_U64_EQ(c.max_bytes_per_user, 4096);
        config_done(&c);

        /* Every level name is accepted. */
        static const struct { const char *name; int level; } levels[] = {
                { "err", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
                { "info", LOG_INFO }, { "debug", LOG_DEBUG },
        };
        for (size_t i = 0; i < ELEMENTSOF(levels); i++) {
                char text[64];

                snprintf(text, sizeof(text), "{\"log_level\": \"%s\"}", levels[i].name);
                ASSERT_OK(parse(&c, text));
                ASSERT_EQ(c.log_level, levels[i].level);
                config_done(&c);
        }

        /* Empty documents keep the defaults; whitespace may follow. */
        ASSERT_OK(parse(&c, "{}"));
        ASSERT_EQ(c.log_level, -1);
        ASSERT_OK(parse(&c, " \t{ \"limits\": {} }\r\n\n  "));
        ASSERT_U64_EQ(c.max_bytes_per_user, 0);
        config_done(&c);
}

static void test_allowed_group(void)
{
        struct config c;

        /* gmemd presets "gmem"; null means root only, a string replaces it. */
        config_init(&c);
        c.allowed_group = strdup("gmem");
        ASSERT(c.allowed_group);
        ASSERT_OK(config_parse(&c, "{\"allowed_group\": null}", "test.json", msg, sizeof(msg)));
        ASSERT(!c.allowed_group);
        config_done(&c);

        config_init(&c);
        c.allowed_group = strdup("gmem");
        ASSERT(c.allowed_group);
        ASSERT_OK(config_parse(&c, "{\"allowed_group\": \"wheel\"}", "test.json", msg, sizeof(msg)));
        ASSERT_STREQ(c.allowed_group, "wheel");
        config_done(&c);

        /* Without the key the preset stays. */
        config_init(&c);
        c.allowed_group = strdup("gmem");
        ASSERT(c.allowed_group);
        ASSERT_OK(config_parse(&c, "{\"log_level\": \"info\"}", "test.json", msg, sizeof(msg)));
        ASSERT_STREQ(c.allowed_group, "gmem");
        config_done(&c);

        assert_rejects("{\"allowed_group\": \"\"}", "test.json: key 'allowed_group' is empty; use null for root only");
}

static void test_type_errors(void)
{
        assert_rejects("{\"log_level\": 7}", "test.json: key 'log_level' must be a string, not a int");
        assert_rejects("{\"log_level\": null}", "test.json: key 'log_level' must be a string, not a null");
        assert_rejects("{\"log_level\": \"verbose\"}",
                       "test.json: key 'log_level' is 'verbose'; use err, warning, notice, info or debug");
        assert_rejects("{\"log_level\": \"DEBUG\"}",
                       "test.json: key 'log_level' is 'DEBUG'; use err, warning, notice, info or debug");
        assert_rejects("{\"allowed_group\": 100}", "test.json: key 'allowed_group' must be a string, not a int");
        assert_rejects("{\"allowed_group\": [\"gmem\"]}", "test.json: key 'allowed_group' must be a string, not a array");
        assert_rejects("{\"limits\": 5}", "test.json: key 'limits' must be a object, not a int");
        assert_rejects("{\"limits\": null}", "test.json: key 'limits' must be a object, not a null");

        static const char bytes_msg[] =
                "test.json: key 'limits.max_bytes_per_user' must be a byte count such as 68719476736 or \"64G\"";
        assert_rejects("{\"limits\": {\"max_bytes_per_user\": true}}", bytes_msg);
        assert_rejects("{\"limits\": {\"max_bytes_per_user\": 1.5}}", bytes_msg);
        assert_rejects("{\"limits\": {\"max_bytes_per_user\": \"64X\"}}", bytes_msg);
        assert_rejects("{\"limits\": {\"max_bytes_per_user\": \"64 G\"}}", bytes_msg);
        assert_rejects("{\"limits\": {\"max_bytes_per_user\": \"\"}}", bytes_msg);
        assert_rejects("{\"limits\": {\"max_bytes_per_user\": \"99999999T\"}}", bytes_msg);
        assert_rejects("{\"limits\": {\"max_bytes_per_user\": {}}}", bytes_msg);
        assert_rejects("{\"limits\": {\"max_bytes_per_user\": -1}}",
                       "test.json: key 'limits.max_bytes_per_user' must not be negative");

        assert_rejects("{\"limits\": {\"max_regions_per_user\": \"8\"}}",
                       "test.json: key 'limits.max_regions_per_user' must be a int, not a string");
        assert_rejects("{\"limits\": {\"max_regions_per_user\": 8.0}}",
                       "test.json: key 'limits.max_regions_per_user' must be a int, not a double");
        assert_rejects("{\"limits\": {\"max_regions_per_user\": -1}}",
                       "test.json: key 'limits.max_regions_per_user' must be between 0 and 4294967295");
        assert_rejects("{\"limits\": {\"max_regions_per_user\": 4294967296}}",
                       "test.json: key 'limits.max_regions_per_user' must be between 0 and 4294967295");

        assert_rejects("[]", "test.json: key '(top level)' must be a object, not a array");
        assert_rejects("\"gmem\"", "test.json: key '(top level)' must be a object, not a string");
        assert_rejects("42", "test.json: key '(top level)' must be a object, not a int");
}

static void test_unknown_keys(void)
{
        assert_rejects("{\"loglevel\": \"info\"}",
                       "test.json: unknown key 'loglevel' (known: log_level, allowed_group, limits, budgets, "
                       "populate)");
        assert_rejects("{\"log_level\": \"info\", \"Limits\": {}}",
                       "test.json: unknown key 'Limits' (known: log_level, allowed_group, limits, budgets, populate)");
        assert_rejects("{\"limits\": {\"max_bytes\": 1}}",
                       "test.json: unknown key 'limits.max_bytes' (known: max_bytes_per_user, max_regions_per_user)");
}

static void test_bad_json(void)
{
        static const char *const bad[] = {
                "", "   ", "{", "}", "{} x", "{}{}", "{} {}", "{}\n]", "{\"log_level\": }",
                "{\"log_level\" \"info\"}", "{\"limits\": {\"max_bytes_per_user\": 1}",
        };
        struct config c;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = parse(&c, bad[i]);

                if (r != -EINVAL || strncmp(msg, "test.json: not valid JSON near byte ", 36) != 0) {
                        fprintf(stderr, "config_parse(\"%s\") = %d, \"%s\"; want invalid JSON\n", bad[i], r, msg);
                        abort();
                }
                config_done(&c);
        }
        /* The offset points at the garbage. */
        assert_rejects("{}  x", "test.json: not valid JSON near byte 4: unexpected character");
        /* Input that stops early says so. */
        assert_rejects("{", "test.json: not valid JSON near byte 1: unexpected end of data");
        assert_rejects("", "test.json: not valid JSON near byte 0: unexpected end of data");
}

static void write_all(int fd, const void *data, size_t n)
{
        ASSERT_EQ(write(fd, data, n), (ssize_t) n);
}

static void test_load(void)
{
        _cleanup_close_ int fd = -1;
        struct config c;
        char path[64];

        config_init(&c);
        ASSERT_EQ(config_load(&c, "/nonexistent/gmemd.json", msg, sizeof(msg)), -ENOENT);
        ASSERT_STREQ(msg, "cannot open /nonexistent/gmemd.json: No such file or directory");

        fd = memfd_create("gmemd.json", MFD_CLOEXEC);
        ASSERT_OK(fd);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        write_all(fd, "{\"limits\": {\"max_regions_per_user\": 3}}", 39);
        ASSERT_OK(config_load(&c, path, msg, sizeof(msg)));
        ASSERT_EQ(c.max_regions_per_user, 3);
        config_done(&c);

        /* Messages name the file. */
        ASSERT_OK(ftruncate(fd, 0));
        ASSERT_OK(lseek(fd, 0, SEEK_SET));
        write_all(fd, "{\"nope\": 1}", 11);
        ASSERT_EQ(config_load(&c, path, msg, sizeof(msg)), -EINVAL);
        ASSERT_CONTAINS(msg, path);
        ASSERT_CONTAINS(msg, "unknown key 'nope'");

        /* A NUL byte would hide the rest of the file from the parser. */
        ASSERT_OK(ftruncate(fd, 0));
        ASSERT_OK(lseek(fd, 0, SEEK_SET));
        write_all(fd, "{}\0{\"nope\": 1}", 14);
        ASSERT_EQ(config_load(&c, path, msg, sizeof(msg)), -EINVAL);
        ASSERT_CONTAINS(msg, "contains a NUL byte");

        /* More than 1 MiB is refused, even when it is valid JSON. */
        ASSERT_OK(ftruncate(fd, 0));
        ASSERT_OK(lseek(fd, 0, SEEK_SET));
        write_all(fd, "{}", 2);
        for (size_t i = 0; i < 1024; i++) {
                static const char spaces[1024] = { [0 ... 1023] = ' ' };
                write_all(fd, spaces, sizeof(spaces));
        }
        ASSERT_EQ(config_load(&c, path, msg, sizeof(msg)), -EINVAL);
        ASSERT_CONTAINS(msg, "larger than 1 MiB");
        config_done(&c);
}

static void test_budgets(void)
{
        struct config c;

        ASSERT_OK(parse(&c, "{ \"budgets\": { \"0\": \"16G\", \"1\": \"75%\", \"3\": 1073741824, "
                            "\"*\": \"all but 2G\" } }"));
        ASSERT_U64_EQ(config_node_budget(&c, 0, 64 * GiB), 16 * GiB);
        ASSERT_U64_EQ(config_node_budget(&c, 1, 64 * GiB), 48 * GiB);
        ASSERT_U64_EQ(config_node_budget(&c, 1, 101), 75); /* 101 * 75 / 100, rounded down */
        ASSERT_U64_EQ(config_node_budget(&c, 1, UINT64_MAX), UINT64_MAX / 100 * 75 + UINT64_MAX % 100 * 75 / 100);
        ASSERT_U64_EQ(config_node_budget(&c, 3, 64 * GiB), GiB);
        /* Node 2 is not named: "*", which leaves 2G, and nothing of a smaller node. */
        ASSERT_U64_EQ(config_node_budget(&c, 2, 64 * GiB), 62 * GiB);
        ASSERT_U64_EQ(config_node_budget(&c, 2, GiB), 0);
        ASSERT_U64_EQ(config_node_budget(&c, 900, 8 * GiB), 6 * GiB);
        config_done(&c);

        /* Without "*" an unnamed node has no budget; "0%" and 0 are real budgets of nothing. */
        ASSERT_OK(parse(&c, "{ \"budgets\": { \"1\": \"0%\", \"2\": 0, \"4\": \"100%\" } }"));
        ASSERT_U64_EQ(config_node_budget(&c, 0, 64 * GiB), UINT64_MAX);
        ASSERT_U64_EQ(config_node_budget(&c, 1, 64 * GiB), 0);
        ASSERT_U64_EQ(config_node_budget(&c, 2, 64 * GiB), 0);
        ASSERT_U64_EQ(config_node_budget(&c, 3, 64 * GiB), UINT64_MAX);
        ASSERT_U64_EQ(config_node_budget(&c, 4, 64 * GiB), 64 * GiB);
        config_done(&c);

        assert_rejects("{\"budgets\": []}", "test.json: key 'budgets' must be a object, not a array");
        assert_rejects("{\"budgets\": {\"x\": \"1G\"}}", "test.json: key 'budgets.x' is not a node; use a node "
                       "number below 1024 or \"*\" for the others");
        assert_rejects("{\"budgets\": {\"1024\": \"1G\"}}", "test.json: key 'budgets.1024' is not a node; use a "
                       "node number below 1024 or \"*\" for the others");
        assert_rejects("{\"budgets\": {\"-1\": \"1G\"}}", "test.json: key 'budgets.-1' is not a node; use a "
                       "node number below 1024 or \"*\" for the others");
        assert_rejects("{\"budgets\": {\"0\": \"101%\"}}", "test.json: key 'budgets.0' is '101%'; a percentage is "
                       "0% to 100%");
        assert_rejects("{\"budgets\": {\"0\": \"%\"}}", "test.json: key 'budgets.0' is '%'; a budget is a size "
                       "(\"16G\"), a percentage (\"75%\") or \"all but\" a size");
        assert_rejects("{\"budgets\": {\"0\": \"7.5%\"}}", "test.json: key 'budgets.0' is '7.5%'; a percentage is "
                       "0% to 100%");
        assert_rejects("{\"budgets\": {\"*\": \"all but\"}}", "test.json: key 'budgets.*' is 'all but'; a budget is "
                       "a size (\"16G\"), a percentage (\"75%\") or \"all but\" a size");
        assert_rejects("{\"budgets\": {\"*\": \"all but two\"}}", "test.json: key 'budgets.*' is 'all but two'; "
                       "write \"all but\" and a size, such as \"all but 2G\"");
        assert_rejects("{\"budgets\": {\"0\": -5}}", "test.json: key 'budgets.0' must not be negative");
        assert_rejects("{\"budgets\": {\"0\": true}}", "test.json: key 'budgets.0' must be a byte count such as "
                       "68719476736 or \"64G\"");
}

/* populate.workers_per_node: 0 (from the CPUs) to the ceiling, nothing else. */
static void test_populate_workers(void)
{
        struct config c;

        ASSERT_OK(parse(&c, "{\"populate\": {\"workers_per_node\": 2}}"));
        ASSERT_EQ(c.populate_workers, 2);
        config_done(&c);
        ASSERT_OK(parse(&c, "{\"populate\": {\"workers_per_node\": 64}}"));
        ASSERT_EQ(c.populate_workers, 64);
        config_done(&c);
        ASSERT_OK(parse(&c, "{\"populate\": {}}"));
        ASSERT_EQ(c.populate_workers, 0);
        config_done(&c);
        assert_rejects("{\"populate\": {\"workers_per_node\": 65}}",
                       "test.json: key 'populate.workers_per_node' is 65; use 0 (from the node's CPUs) to 64");
        assert_rejects("{\"populate\": {\"workers_per_node\": -1}}",
                       "test.json: key 'populate.workers_per_node' is -1; use 0 (from the node's CPUs) to 64");
        assert_rejects("{\"populate\": {\"workers_per_node\": \"2\"}}",
                       "test.json: key 'populate.workers_per_node' must be a int, not a string");
        assert_rejects("{\"populate\": {\"workers\": 2}}",
                       "test.json: unknown key 'populate.workers' (known: workers_per_node)");
        assert_rejects("{\"populate\": 2}", "test.json: key 'populate' must be a object, not a int");
}

int main(void)
{
        test_budgets();
        test_valid();
        test_populate_workers();
        test_allowed_group();
        test_type_errors();
        test_unknown_keys();
        test_bad_json();
        test_load();
        return 0;
}
