/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl: the operator's view of gmemd. Parses and checks the command line
 * (usage errors exit 2), then runs one verb (failures exit 1). */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmem-config.h"
#include "gmem.h"
#include "gmemctl.h"
#include "util.h"

#define EXIT_USAGE 2

static const struct verb {
        const char *name;
        const char *summary;
        const char *synopsis;
        const char *help;
        unsigned n_args; /* exactly this many operands after the verb */
        bool create_options;
        int (*run)(const struct args *a);
} verbs[] = {
        { "status", "Show nodes, kernel features and region totals", "status [--watch[=SECONDS]] [--count=N]",
          "Show the host's NUMA nodes with a bar each (held, promised, free within the node's budget),\n"
          "the kernel features gmemd sees, and region totals. --watch shows it again every SECONDS\n"
          "(default 2) until SIGINT or SIGTERM, or N times with --count; on a terminal each round\n"
          "redraws the screen.",
          0, false, verb_status },
        { "list", "List regions", "list [--uid=UID] [--limit=N] [--offset=N] [--below=ID]",
          "List the regions gmemd holds, or a page of them, the newest that match: --uid lists\n"
          "only UID's (a number or a user name), --below only those with an id below ID (the\n"
          "oldest id of a page asks for the next one), --offset skips the first N, --limit shows\n"
          "at most N.",
          0, false, verb_list },
        { "show", "Show one region's properties", "show REGION", "Show one region's properties, including its resident bytes per node.\n"
          "REGION is a region id, a region name or an object path.", 1, false, verb_show },
        { "create", "Create a region on a scratch VM to try placement", "create SIZE [--name=NAME] [--policy=POLICY] [--nodes=LIST] [--populate]\n"
          "                     [--private] [--persist] [--hold] [--numa-page-tables] [--cpus=LIST] [--spill]",
          "Create a region of SIZE bytes (4096, 64M, 1G: binary units) on a scratch VM that\n"
          "gmemctl makes itself, print it, and release it again when gmemctl exits, unless\n"
          "--persist or --hold.", 1, true, verb_create },
        { "release", "Release a region", "release REGION", "Release a region now. REGION is an id, a name or an object path.",
          1, false, verb_release },
        { "usage", "Show what each uid holds, and what its limits leave", "usage",
          "Show, per uid holding regions (and yours): regions, bytes, bytes charged per node, and what\n"
          "limits.max_bytes_per_user and limits.max_regions_per_user leave ('-': no limit).", 0, false, verb_usage },
        { "metrics", "Print gmemd's accounting in the Prometheus text format", "metrics",
          "Print per-node and per-uid gauges in the Prometheus text exposition format, for\n"
          "node_exporter's textfile collector (see gmemctl(1)).", 0, false, verb_metrics },
        { "populate", "Populate a region, showing progress", "populate REGION [OFFSET LENGTH] [--workers=N]",
          "Allocate REGION (all of it, or LENGTH bytes from OFFSET: 4096, 64M, 1G) on its nodes,\n"
          "with gmemd's workers bound to those nodes' CPUs, showing a progress bar on a\n"
          "terminal, lines otherwise, JSON lines with --json. Ctrl-C cancels the populate in\n"
          "gmemd (CancelPopulate); what was allocated stays in the region.", 1, false, verb_populate },
        { "migrations", "List migrations with their progress", "migrations",
          "List the migrations gmemd runs or ran (ExportRegion, ImportRegion), with a progress bar.", 0, false,
          verb_migrations },
        { "export", "Serve a region to a destination gmemd", "export REGION [--listen=ENDPOINT] [--token=TOKEN] [--wait]",
          "Serve REGION to one destination gmemd and print the endpoint and token it needs.\n"
          "With --wait, follow the migration until the destination has everything.", 1, false, verb_export },
        { "import", "Fill a new region from a source gmemd", "import SIZE ENDPOINT TOKEN [--precopy-only] [--name=NAME]\n"
          "                     [--policy=POLICY] [--nodes=LIST] [--persist] [--hold]",
          "Create a region of SIZE bytes on a scratch VM and fill it from the gmemd serving\n"
          "ENDPOINT (see export), following its progress to the end. Released again when\n"
          "gmemctl exits, unless --persist or --hold.", 3, true, verb_import },
};

static const char populate_options_help[] =
        "     --workers=N          Workers per node (1-64; default: gmemd's, from the CPUs)\n";

static const char create_options_help[] =
        "     --name=NAME          Name the region (letters, digits, '.', '_', '-')\n"
        "     --policy=POLICY      default, bind, preferred, interleave or auto\n"
        "     --nodes=LIST         NUMA nodes for the policy, e.g. 0 or 0,1 or 0-3\n"
        "     --populate           Allocate the whole region now, on its nodes\n"
        "     --private            Create the guest_memfd without INIT_SHARED\n"
        "     --persist            Keep the region in gmemd after gmemctl exits\n"
        "     --hold               Keep gmemctl (and the region) until SIGINT or SIGTERM\n"
        "     --numa-page-tables   Enable KVM_CAP_NUMA_AWARE_PAGE_TABLES on the scratch VM\n"
        "     --cpus=LIST          With --policy=auto: the VM's CPUs, e.g. 0-3,8; their nodes are chosen\n"
        "     --spill              With --cpus: the region may spread beyond their nodes\n\n"
        "     --precopy-only       import: copy everything first (no kernel postcopy needed)\n"
        "     --listen=ENDPOINT    export: tcp:HOST:PORT or unix:PATH (default tcp:0.0.0.0:0)\n"
        "     --token=TOKEN        export: the secret to use instead of a random one\n"
        "     --wait               export: follow the migration until it ends\n";

static const char status_options_help[] =
        "     --watch[=SECONDS]    Show it again every SECONDS (default 2), until SIGINT/SIGTERM\n"
        "     --count=N            With --watch: stop after N rounds\n";

static const char list_options_help[] =
        "     --uid=UID            Only the regions of UID (a number or a user name)\n"
        "     --limit=N            At most N regions, the newest first (1 or more)\n"
        "     --offset=N           Skip the first N regions that match\n"
        "     --below=ID           Only regions whose id is below ID\n";

static const char global_options_help[] =
        "  -h --help               Show this help, or a command's help\n"
        "     --version            Show the version\n"
        "     --json               Print JSON instead of tables (see gmemctl(1))\n"
        "     --no-legend          Do not print column headers and footers\n"
        "     --bus=BUS            system, session, or a D-Bus address such as\n"
        "                          unix:path=/run/gmem-test/bus (default: $GMEM_BUS_ADDRESS,\n"
        "                          else system)\n";

/* The synopsis up to its options: "create SIZE". */
static int synopsis_length(const struct verb *v)
{
        int len = (int) strcspn(v->synopsis, "[\n");

        while (len > 0 && v->synopsis[len - 1] == ' ')
                len--;
        return len;
}

static void help(void)
{
        printf("Usage: gmemctl [OPTIONS...] COMMAND ...\n\n"
               "Inspect and manage the guest_memfd regions of gmemd (%s).\n\nCommands:\n", GMEM_BUS_NAME);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-19.*s%s\n", synopsis_length(&verbs[i]), verbs[i].synopsis, verbs[i].summary);
        printf("  help [COMMAND]     Show this help, or a command's help\n");
        printf("\nOptions:\n%s\nOptions of create:\n%s\nOptions of status:\n%s\nOptions of populate:\n%s\n"
               "Options of list:\n%s\nSee gmemctl(1).\n", global_options_help, create_options_help,
               status_options_help, populate_options_help, list_options_help);
}

static void verb_help(const struct verb *v)
{
        printf("Usage: gmemctl [OPTIONS...] %s\n\n%s\n\n", v->synopsis, v->help);
        if (v->create_options)
                printf("Options:\n%s\n", create_options_help);
        if (v->run == verb_status)
                printf("Options:\n%s\n", status_options_help);
        if (v->run == verb_populate)
                printf("Options:\n%s\n", populate_options_help);
        if (v->run == verb_list)
                printf("Options:\n%s\n", list_options_help);
        printf("Global options:\n%s\nSee gmemctl(1).\n", global_options_help);
}

static const struct verb *find_verb(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

static int usage_error(const char *verb, const char *format, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *verb, const char *format, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, format);
        vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        log_error("%s", msg);
        fprintf(stderr, "Try 'gmemctl %s--help' for more information.\n", verb ?: "");
        return -EINVAL;
}

/* Remember a create-only option so that it can be refused for other verbs. */
struct parse_state {
        const char *create_option;
        const char *status_option;
        const char *populate_option;
        const char *migrate_option; /* export's or import's */
        const char *list_option;
        bool help;
        bool version;
};

static int parse_create_option(int c, const char *value, struct args *a, struct parse_state *s)
{
        int r;

        switch (c) {
        case 'N':
                s->create_option = "--name";
                a->name = value;
                return 0;
        case 'P':
                s->create_option = "--policy";
                a->policy = gmem_policy_from_string(value);
                if (a->policy < 0)
                        return usage_error("create ", "unknown policy '%s' (expected default, bind, preferred, "
                                           "interleave or auto)", value);
                return 0;
        case 'O':
                s->create_option = "--nodes";
                free(a->nodes);
                a->nodes = NULL;
                r = parse_node_list(value, &a->nodes, &a->n_nodes);
                if (r < 0)
                        return usage_error("create ", "invalid node list '%s': use node numbers below 1024 such as "
                                           "0, 0,1 or 0-3", value);
                return 0;
        case 'p':
                s->create_option = "--populate";
                a->populate = true;
                return 0;
        case 'v':
                s->create_option = "--private";
                a->private_memory = true;
                return 0;
        case 'k':
                s->create_option = "--persist";
                a->persist = true;
                return 0;
        case 'H':
                s->create_option = "--hold";
                a->hold = true;
                return 0;
        case 'T':
                s->create_option = "--numa-page-tables";
                a->numa_page_tables = true;
                return 0;
        case 'C':
                s->create_option = "--cpus";
                a->cpus = value; /* gmemd checks it against the host's CPUs */
                return 0;
        case 'S':
                s->create_option = "--spill";
                a->spill = true;
                return 0;
        case 'R':
                s->migrate_option = "--precopy-only";
                a->precopy_only = true;
                return 0;
        case 'L':
                s->migrate_option = "--listen";
                a->listen = value;
                return 0;
        case 'K':
                s->migrate_option = "--token";
                a->token = value;
                return 0;
        case 'A':
                s->migrate_option = "--wait";
                a->wait = true;
                return 0;
        }
        return 1; /* not a create option */
}

/* A uid as a number (not (uid_t) -1) or a user's name. */
static int parse_uid(const char *value, uint64_t *ret)
{
        struct passwd *pw;
        unsigned u;

        if (parse_uint(value, &u) >= 0)
                return u == UINT32_MAX ? -ERANGE : (*ret = u, 0);
        pw = *value ? getpwnam(value) : NULL;
        if (!pw)
                return -EINVAL;
        *ret = pw->pw_uid;
        return 0;
}

/* list's --uid=UID (a number or a user name), --limit=N (1 or more),
 * --offset=N and --below=ID (an id, 1 or more). */
static int parse_list_option(int c, const char *value, struct args *a, struct parse_state *s)
{
        static const char *const names[] = { "--uid", "--limit", "--offset", "--below" };
        const char *name = names[c == 'U' ? 0 : c == 'M' ? 1 : c == 'F' ? 2 : 3];
        uint64_t u;
        int r;

        s->list_option = name;
        a->filtered = true;
        if (c == 'U') {
                r = parse_uid(value, &u);
                if (r < 0)
                        return usage_error("list ", "invalid --uid '%s': give a uid below 4294967295 or a user name",
                                           value);
                a->owner_uid = (int64_t) u;
                return 0;
        }
        r = parse_u64(value, &u);
        if (r < 0 || (c != 'F' && u == 0) || (c != 'B' && u > UINT32_MAX))
                return usage_error("list ", "invalid %s '%s': give a number from %d to %s", name, value,
                                   c == 'F' ? 0 : 1, c == 'B' ? "2^64-1" : "4294967295");
        if (c == 'M')
                a->list_limit = (unsigned) u;
        else if (c == 'F')
                a->list_offset = (unsigned) u;
        else
                a->below_id = u;
        return 0;
}

/* --watch[=SECONDS] (0.1 to 86400, default 2) and --count=N (1 or more). */
static int parse_status_option(bool watch, const char *value, struct args *a, struct parse_state *s)
{
        char *end = NULL;
        unsigned count;
        double seconds;

        s->status_option = watch ? "--watch" : "--count";
        if (!watch) {
                if (parse_uint(value, &count) < 0 || count == 0)
                        return usage_error("status ", "invalid --count '%s': give a number of rounds, 1 or more", value);
                a->watch_count = count;
                return 0;
        }
        seconds = value ? strtod(value, &end) : 2.0;
        if (value && (!*value || *end || !(seconds >= 0.1 && seconds <= 86400.0)))
                return usage_error("status ", "invalid --watch interval '%s': give seconds from 0.1 to 86400, "
                                   "such as 2 or 0.5", value);
        a->watch_usec = (uint64_t) (seconds * 1e6);
        return 0;
}

static int parse_options(int argc, char *argv[], struct args *a, struct parse_state *s)
{
        enum { ARG_VERSION = 0x100, ARG_JSON, ARG_NO_LEGEND, ARG_BUS, ARG_WATCH, ARG_COUNT };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "bus", required_argument, NULL, ARG_BUS },
                { "name", required_argument, NULL, 'N' },
                { "policy", required_argument, NULL, 'P' },
                { "nodes", required_argument, NULL, 'O' },
                { "populate", no_argument, NULL, 'p' },
                { "private", no_argument, NULL, 'v' },
                { "persist", no_argument, NULL, 'k' },
                { "hold", no_argument, NULL, 'H' },
                { "numa-page-tables", no_argument, NULL, 'T' },
                { "cpus", required_argument, NULL, 'C' },
                { "spill", no_argument, NULL, 'S' },
                { "watch", optional_argument, NULL, ARG_WATCH },
                { "count", required_argument, NULL, ARG_COUNT },
                { "workers", required_argument, NULL, 'W' },
                { "precopy-only", no_argument, NULL, 'R' },
                { "listen", required_argument, NULL, 'L' },
                { "token", required_argument, NULL, 'K' },
                { "wait", no_argument, NULL, 'A' },
                { "uid", required_argument, NULL, 'U' },
                { "limit", required_argument, NULL, 'M' },
                { "offset", required_argument, NULL, 'F' },
                { "below", required_argument, NULL, 'B' },
                {}
        };
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        s->help = true;
                        break;
                case ARG_VERSION:
                        s->version = true;
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_NO_LEGEND:
                        a->legend = false;
                        break;
                case ARG_BUS:
                        if (!*optarg)
                                return usage_error(NULL, "--bus needs system, session or a D-Bus address");
                        a->bus = optarg;
                        break;
                case ARG_WATCH:
                case ARG_COUNT:
                        r = parse_status_option(c == ARG_WATCH, optarg, a, s);
                        if (r < 0)
                                return r;
                        break;
                case 'W':
                        s->populate_option = "--workers";
                        if (parse_uint(optarg, &a->workers) < 0 || a->workers < 1 || a->workers > 64)
                                return usage_error("populate ", "invalid --workers '%s': give 1 to 64 workers per node",
                                                   optarg);
                        break;
                case 'U':
                case 'M':
                case 'F':
                case 'B':
                        r = parse_list_option(c, optarg, a, s);
                        if (r < 0)
                                return r;
                        break;
                case ':':
                        return usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
                case '?':
                        if (optopt)
                                return usage_error(NULL, "unknown option '-%c'", optopt);
                        return usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
                default:
                        r = parse_create_option(c, optarg, a, s);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                return usage_error(NULL, "unexpected option %d", c);
                        break;
                }
        }
        return 0;
}

/* populate REGION [OFFSET LENGTH]: sizes as for create; gmemd checks the range. */
static int parse_populate_operands(const struct verb *v, int n, char **operands, struct args *a)
{
        if (n != 1 && n != 3)
                return usage_error("populate ", n == 2 ? "OFFSET needs a LENGTH: %.*s" :
                                   n == 0 ? "missing operand: %.*s" : "too many operands: %.*s",
                                   synopsis_length(v), v->synopsis);
        a->region = operands[0];
        if (n == 1)
                return 0;
        if (parse_size(operands[1], &a->offset) < 0)
                return usage_error("populate ", "invalid offset '%s': give bytes, or a number with K, M, G or T",
                                   operands[1]);
        if (parse_size(operands[2], &a->length) < 0)
                return usage_error("populate ", "invalid length '%s': give bytes, or a number with K, M, G or T",
                                   operands[2]);
        a->have_range = true;
        return 0;
}

static int parse_operands(const struct verb *v, int n, char **operands, struct args *a,
                          const struct parse_state *s)
{
        char hint[32];
        int r;

        snprintf(hint, sizeof(hint), "%s ", v->name);
        if (s->create_option && !v->create_options)
                return usage_error(hint, "%s is an option of create, not of %s", s->create_option, v->name);
        if (s->migrate_option && !streq(v->name, streq(s->migrate_option, "--precopy-only") ? "import" : "export"))
                return usage_error(hint, "%s is an option of %s, not of %s", s->migrate_option,
                                   streq(s->migrate_option, "--precopy-only") ? "import" : "export", v->name);
        if (s->status_option && v->run != verb_status)
                return usage_error(hint, "%s is an option of status, not of %s", s->status_option, v->name);
        if (a->watch_count && !a->watch_usec)
                return usage_error(hint, "--count needs --watch");
        if (s->populate_option && !streq(v->name, "populate"))
                return usage_error(hint, "%s is an option of populate, not of %s", s->populate_option, v->name);
        if (s->list_option && v->run != verb_list)
                return usage_error(hint, "%s is an option of list, not of %s", s->list_option, v->name);
        if (streq(v->name, "populate"))
                return parse_populate_operands(v, n, operands, a);
        if ((unsigned) n < v->n_args)
                return usage_error(hint, "missing operand: %.*s", synopsis_length(v), v->synopsis);
        if ((unsigned) n > v->n_args)
                return usage_error(hint, "unexpected argument '%s': %.*s", operands[v->n_args],
                                   synopsis_length(v), v->synopsis);
        if (streq(v->name, "create") || streq(v->name, "import")) {
                r = parse_size(operands[0], &a->size);
                if (r == -ERANGE)
                        return usage_error(hint, "size '%s' does not fit in 64 bits", operands[0]);
                if (r < 0)
                        return usage_error(hint, "invalid size '%s': give bytes, or a number with K, M, G or T "
                                           "(binary units), such as 64M", operands[0]);
                if (v->n_args == 3) {
                        a->endpoint = operands[1];
                        a->token = operands[2];
                }
        } else if (v->n_args == 1)
                a->region = operands[0];
        return 0;
}

static int run(int argc, char *argv[])
{
        struct args a = { .legend = true, .policy = -1, .owner_uid = -1 };
        struct parse_state s = {};
        const struct verb *v = NULL;
        int r;

        r = parse_options(argc, argv, &a, &s);
        if (r < 0)
                goto out;
        if (s.version) {
                printf("gmemctl %s\n", GMEM_VERSION);
                goto out;
        }
        if (optind < argc && streq(argv[optind], "help")) {
                s.help = true;
                optind++;
                if (optind == argc) {
                        help();
                        goto out;
                }
        }
        if (optind == argc) {
                if (s.help)
                        help();
                else
                        r = usage_error(NULL, "missing command (status, list, show, create, release, populate, "
                                        "usage, metrics, migrations, export or import)");
                goto out;
        }
        v = find_verb(argv[optind]);
        if (!v) {
                r = usage_error(NULL, "unknown command '%s' (status, list, show, create, release, populate, usage, "
                                "metrics, migrations, export or import)", argv[optind]);
                goto out;
        }
        if (s.help) {
                verb_help(v);
                goto out;
        }
        r = parse_operands(v, argc - optind - 1, argv + optind + 1, &a, &s);
        if (r < 0)
                goto out;
        r = v->run(&a);
        r = r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        free(a.nodes);
        return r;
out:
        free(a.nodes);
        return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
}

int main(int argc, char *argv[])
{
        int r;

        log_set_program("gmemctl");
        r = run(argc, argv);

        if (fflush(stdout) != 0 || ferror(stdout)) {
                log_error_errno(negative_errno(), "cannot write the output: %m");
                return EXIT_FAILURE;
        }
        return r;
}
