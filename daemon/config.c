/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parses gmemd.json with json-c. Unknown keys and wrong types are errors that
 * name the key, so a typo never silently falls back to a default. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define CONFIG_MAX_SIZE (1024 * 1024)

void config_init(struct config *c)
{
        *c = (struct config) { .log_level = -1 };
}

void config_done(struct config *c)
{
        free(c->allowed_group);
        free(c->budgets);
        config_init(c);
}

static void json_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}

static int want_type(json_object *v, json_type type, const char *key, const char *source,
                     char *msg, size_t msg_size)
{
        if (json_object_is_type(v, type))
                return 0;
        snprintf(msg, msg_size, "%s: key '%s' must be a %s, not a %s", source, key,
                 json_type_to_name(type), json_type_to_name(json_object_get_type(v)));
        return -EINVAL;
}

/* A byte count: a non-negative integer or a size string such as "64G". */
static int parse_bytes_value(json_object *v, const char *key, const char *source, uint64_t *ret,
                             char *msg, size_t msg_size)
{
        if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);

                if (i < 0) {
                        snprintf(msg, msg_size, "%s: key '%s' must not be negative", source, key);
                        return -EINVAL;
                }
                /* json-c clamps integers above INT64_MAX to it: refuse them
                 * rather than silently use another number. */
                if ((uint64_t) i != json_object_get_uint64(v)) {
                        snprintf(msg, msg_size, "%s: key '%s' must be at most %" PRId64, source, key, INT64_MAX);
                        return -EINVAL;
                }
                *ret = (uint64_t) i;
                return 0;
        }
        if (json_object_is_type(v, json_type_string) && parse_size(json_object_get_string(v), ret) >= 0)
                return 0;
        snprintf(msg, msg_size, "%s: key '%s' must be a byte count such as 68719476736 or \"64G\"", source, key);
        return -EINVAL;
}

static int parse_limits(struct config *c, json_object *limits, const char *source, char *msg, size_t msg_size)
{
        int r = want_type(limits, json_type_object, "limits", source, msg, msg_size);

        if (r < 0)
                return r;
        json_object_object_foreach(limits, key, v) {
                if (streq(key, "max_bytes_per_user")) {
                        r = parse_bytes_value(v, "limits.max_bytes_per_user", source, &c->max_bytes_per_user, msg, msg_size);
                        if (r < 0)
                                return r;
                } else if (streq(key, "max_regions_per_user")) {
                        int64_t n;

                        r = want_type(v, json_type_int, "limits.max_regions_per_user", source, msg, msg_size);
                        if (r < 0)
                                return r;
                        n = json_object_get_int64(v);
                        if (n < 0 || n > UINT32_MAX) {
                                snprintf(msg, msg_size, "%s: key 'limits.max_regions_per_user' must be between 0 and %u",
                                         source, UINT32_MAX);
                                return -EINVAL;
                        }
                        c->max_regions_per_user = (unsigned) n;
                } else {
                        snprintf(msg, msg_size, "%s: unknown key 'limits.%s' (known: max_bytes_per_user, max_regions_per_user)",
                                 source, key);
                        return -EINVAL;
                }
        }
        return 0;
}

/* One budget: bytes (integer or "16G"), "75%" or "all but 2G". */
static int parse_budget_value(json_object *v, const char *key, const char *source, struct node_budget *ret,
                              char *msg, size_t msg_size)
{
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        size_t len = s ? strlen(s) : 0;
        unsigned percent;

        if (s && len > 1 && s[len - 1] == '%') {
                _cleanup_free_ char *number = strndup(s, len - 1);

                if (!number)
                        return -ENOMEM;
                if (parse_uint(number, &percent) < 0 || percent > 100) {
                        snprintf(msg, msg_size, "%s: key '%s' is '%s'; a percentage is 0%% to 100%%", source, key, s);
                        return -EINVAL;
                }
                *ret = (struct node_budget) { BUDGET_PERCENT, percent };
                return 0;
        }
        if (s && strncmp(s, "all but ", strlen("all but ")) == 0) {
                uint64_t bytes;

                if (parse_size(s + strlen("all but "), &bytes) < 0) {
                        snprintf(msg, msg_size, "%s: key '%s' is '%s'; write \"all but\" and a size, such as "
                                 "\"all but 2G\"", source, key, s);
                        return -EINVAL;
                }
                *ret = (struct node_budget) { BUDGET_ALL_BUT, bytes };
                return 0;
        }
        if (s && parse_size(s, &ret->value) < 0) {
                snprintf(msg, msg_size, "%s: key '%s' is '%s'; a budget is a size (\"16G\"), a percentage (\"75%%\") "
                         "or \"all but\" a size", source, key, s);
                return -EINVAL;
        }
        if (!s && parse_bytes_value(v, key, source, &ret->value, msg, msg_size) < 0)
                return -EINVAL;
        ret->kind = BUDGET_BYTES;
        return 0;
}

/* "budgets": { "0": "16G", "1": "75%", "*": "all but 2G" } */
static int parse_budgets(struct config *c, json_object *budgets, const char *source, char *msg, size_t msg_size)
{
        int r = want_type(budgets, json_type_object, "budgets", source, msg, msg_size);

        if (r < 0)
                return r;
        json_object_object_foreach(budgets, key, v) {
                char name[64];
                unsigned node;

                snprintf(name, sizeof(name), "budgets.%s", key);
                if (streq(key, "*")) {
                        r = parse_budget_value(v, name, source, &c->budget_other, msg, msg_size);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (parse_uint(key, &node) < 0 || node >= CONFIG_BUDGET_NODES_MAX) {
                        snprintf(msg, msg_size, "%s: key 'budgets.%s' is not a node; use a node number below %u or "
                                 "\"*\" for the others", source, key, CONFIG_BUDGET_NODES_MAX);
                        return -EINVAL;
                }
                if (node >= c->n_budgets) {
                        struct node_budget *b = realloc(c->budgets, (node + 1) * sizeof(*b));

                        if (!b)
                                return -ENOMEM;
                        memset(b + c->n_budgets, 0, (node + 1 - c->n_budgets) * sizeof(*b));
                        c->budgets = b;
                        c->n_budgets = node + 1;
                }
                r = parse_budget_value(v, name, source, &c->budgets[node], msg, msg_size);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "populate": { "workers_per_node": N } */
static int parse_populate(struct config *c, json_object *populate, const char *source, char *msg, size_t msg_size)
{
        int r = want_type(populate, json_type_object, "populate", source, msg, msg_size);

        if (r < 0)
                return r;
        json_object_object_foreach(populate, key, v) {
                int64_t n;

                if (!streq(key, "workers_per_node")) {
                        snprintf(msg, msg_size, "%s: unknown key 'populate.%s' (known: workers_per_node)", source, key);
                        return -EINVAL;
                }
                r = want_type(v, json_type_int, "populate.workers_per_node", source, msg, msg_size);
                if (r < 0)
                        return r;
                n = json_object_get_int64(v);
                if (n < 0 || n > CONFIG_POPULATE_WORKERS_MAX) {
                        snprintf(msg, msg_size, "%s: key 'populate.workers_per_node' is %" PRId64 "; use 0 (from the "
                                 "node's CPUs) to %d", source, n, CONFIG_POPULATE_WORKERS_MAX);
                        return -EINVAL;
                }
                c->populate_workers = (unsigned) n;
        }
        return 0;
}

uint64_t config_node_budget(const struct config *c, unsigned node, uint64_t total)
{
        const struct node_budget *b = node < c->n_budgets && c->budgets[node].kind != BUDGET_NONE ?
                                      &c->budgets[node] : &c->budget_other;

        switch (b->kind) {
        case BUDGET_BYTES:
                return b->value;
        case BUDGET_PERCENT:
                /* Exact for any total: no overflow of total * percent. */
                return total / 100 * b->value + total % 100 * b->value / 100;
        case BUDGET_ALL_BUT:
                return total > b->value ? total - b->value : 0;
        default:
                return UINT64_MAX;
        }
}

DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

/* The whole of @text as one JSON document, or -EINVAL with where it breaks. */
static int parse_document(const char *text, const char *source, json_object **ret, char *msg, size_t msg_size)
{
        _cleanup_(json_tokener_freep) json_tokener *tok = json_tokener_new();
        enum json_tokener_error jerr;

        if (!tok)
                return -ENOMEM;
        /* -1: parse up to and including the NUL, so input that ends early is
         * "unexpected end of data" (not "continue") and a bare number completes. */
        *ret = json_tokener_parse_ex(tok, text, -1);
        jerr = json_tokener_get_error(tok);
        /* Only whitespace may follow the document. */
        if (jerr == json_tokener_success && tok->char_offset < (int) strlen(text) &&
            text[tok->char_offset + strspn(text + tok->char_offset, " \t\r\n")])
                jerr = json_tokener_error_parse_unexpected;
        if (jerr == json_tokener_success && *ret)
                return 0;
        json_object_put(*ret);
        *ret = NULL;
        snprintf(msg, msg_size, "%s: not valid JSON near byte %d: %s", source, (int) tok->char_offset,
                 json_tokener_error_desc(jerr == json_tokener_success ? json_tokener_continue : jerr));
        return -EINVAL;
}

static int parse_log_level(struct config *c, json_object *v, const char *source, char *msg, size_t msg_size)
{
        int r = want_type(v, json_type_string, "log_level", source, msg, msg_size);

        if (r < 0)
                return r;
        c->log_level = log_level_from_string(json_object_get_string(v));
        if (c->log_level < 0) {
                snprintf(msg, msg_size, "%s: key 'log_level' is '%s'; use err, warning, notice, info or debug",
                         source, json_object_get_string(v));
                return -EINVAL;
        }
        return 0;
}

static int parse_allowed_group(struct config *c, json_object *v, const char *source, char *msg, size_t msg_size)
{
        int r;

        free(c->allowed_group);
        c->allowed_group = NULL;
        if (json_object_is_type(v, json_type_null))
                return 0;
        r = want_type(v, json_type_string, "allowed_group", source, msg, msg_size);
        if (r < 0)
                return r;
        if (!*json_object_get_string(v)) {
                snprintf(msg, msg_size, "%s: key 'allowed_group' is empty; use null for root only", source);
                return -EINVAL;
        }
        c->allowed_group = strdup(json_object_get_string(v));
        return c->allowed_group ? 0 : -ENOMEM;
}

int config_parse(struct config *c, const char *text, const char *source, char *msg, size_t msg_size)
{
        _cleanup_(json_putp) json_object *root = NULL;
        int r;

        r = parse_document(text, source, &root, msg, msg_size);
        if (r < 0)
                return r;
        r = want_type(root, json_type_object, "(top level)", source, msg, msg_size);
        if (r < 0)
                return r;
        json_object_object_foreach(root, key, v) {
                if (streq(key, "log_level"))
                        r = parse_log_level(c, v, source, msg, msg_size);
                else if (streq(key, "allowed_group"))
                        r = parse_allowed_group(c, v, source, msg, msg_size);
                else if (streq(key, "limits"))
                        r = parse_limits(c, v, source, msg, msg_size);
                else if (streq(key, "budgets"))
                        r = parse_budgets(c, v, source, msg, msg_size);
                else if (streq(key, "populate"))
                        r = parse_populate(c, v, source, msg, msg_size);
                else {
                        snprintf(msg, msg_size, "%s: unknown key '%s' (known: log_level, allowed_group, limits, budgets, "
                                 "populate)",
                                 source, key);
                        r = -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int config_load(struct config *c, const char *path, char *msg, size_t msg_size)
{
        _cleanup_free_ char *text = NULL;
        FILE *f;
        size_t n;

        f = fopen(path, "re");
        if (!f) {
                int r = negative_errno();

                snprintf(msg, msg_size, "cannot open %s: %s", path, strerror(-r));
                return r;
        }
        text = malloc(CONFIG_MAX_SIZE + 1);
        if (!text) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(text, 1, CONFIG_MAX_SIZE + 1, f);
        if (ferror(f) || n > CONFIG_MAX_SIZE) {
                fclose(f);
                snprintf(msg, msg_size, "%s: %s", path, n > CONFIG_MAX_SIZE ? "larger than 1 MiB" : "read error");
                return -EINVAL;
        }
        fclose(f);
        text[n] = '\0';
        if (strlen(text) != n) {
                snprintf(msg, msg_size, "%s: contains a NUL byte", path);
                return -EINVAL;
        }
        return config_parse(c, text, path, msg, msg_size);
}
