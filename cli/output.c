/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl output: error lines on stderr, --json printing, aligned tables and
 * the human one-line renderings of nodes, residency and owners. */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gmemctl.h"
#include "util.h"

int log_bus_error(const sd_bus_error *error, int r, const char *what)
{
        if (sd_bus_error_is_set(error))
                return log_error_errno(r, "%s (%s)", error->message ?: what, error->name);
        return log_error_errno(r < 0 ? r : -EIO, "%s: %m", what);
}

int json_print(json_object *o)
{
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
        const char *s;

        /* One line for scripts, indented for a person at a terminal. */
        flags |= isatty(STDOUT_FILENO) ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN;
        s = json_object_to_json_string_ext(o, flags);
        if (!s)
                return log_error_errno(-ENOMEM, "cannot format JSON: out of memory");
        puts(s);
        return 0;
}

int json_add(json_object *o, const char *key, json_object *value)
{
        if (!o || !value || json_object_object_add(o, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

static json_object *nodes_to_json(const uint32_t *nodes, size_t n)
{
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++) {
                json_object *v = json_object_new_int64(nodes[i]);

                if (!v || json_object_array_add(a, v) < 0) {
                        json_object_put(v);
                        return NULL;
                }
        }
        return TAKE_PTR(a);
}

static json_object *resident_to_json(const struct region_props *p)
{
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < p->n_resident; i++) {
                _cleanup_(json_object_putp) json_object *e = json_object_new_object();

                if (json_add(e, "node", json_object_new_int64(p->resident[i].node)) < 0 ||
                    json_add(e, "bytes", json_object_new_uint64(p->resident[i].bytes)) < 0 ||
                    json_object_array_add(a, e) < 0)
                        return NULL;
                e = NULL; /* the array owns it now */
        }
        return TAKE_PTR(a);
}

json_object *region_props_to_json(const char *path, const struct region_props *p, bool full)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        uint64_t id = 0;

        (void) gmem_region_id_from_path(path, &id);
        if (json_add(o, "path", json_object_new_string(path)) < 0 ||
            json_add(o, "id", json_object_new_uint64(id)) < 0 ||
            json_add(o, "name", json_object_new_string(p->name)) < 0 ||
            json_add(o, "size", json_object_new_uint64(p->size)) < 0 ||
            json_add(o, "policy", json_object_new_string(p->policy)) < 0 ||
            json_add(o, "nodes", nodes_to_json(p->nodes, p->n_nodes)) < 0)
                return NULL;
        if (full && (json_add(o, "owner_uid", json_object_new_int64(p->owner_uid)) < 0 ||
                     json_add(o, "owner_pid", json_object_new_int64(p->owner_pid)) < 0))
                return NULL;
        if (json_add(o, "resident", resident_to_json(p)) < 0)
                return NULL;
        if (p->placement_reason && json_add(o, "placement_reason", json_object_new_string(p->placement_reason)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

char *format_nodes(const uint32_t *nodes, size_t n)
{
        char *s = NULL;
        size_t len = 0;
        FILE *f;

        if (n == 0)
                return strdup("-");
        f = open_memstream(&s, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%" PRIu32, i ? "," : "", nodes[i]);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

char *format_resident(const struct region_props *p)
{
        char buf[FORMAT_BYTES_MAX];
        char *s = NULL;
        size_t len = 0;
        FILE *f;

        if (p->n_resident == 0)
                return strdup("nothing");
        f = open_memstream(&s, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; i < p->n_resident; i++)
                fprintf(f, "%s%s on node %" PRIu32, i ? ", " : "",
                        format_bytes(buf, sizeof(buf), p->resident[i].bytes), p->resident[i].node);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

char *format_owner(uint32_t uid)
{
        struct passwd *pw = getpwuid(uid);
        char *s;

        if (pw && asprintf(&s, "%" PRIu32 " (%s)", uid, pw->pw_name) >= 0)
                return s;
        if (asprintf(&s, "%" PRIu32, uid) >= 0)
                return s;
        return NULL;
}

/* --- tables ---------------------------------------------------------------- */

struct table {
        size_t n_columns;
        char **cells; /* headers first, then rows */
        size_t n_cells;
};

int table_new(size_t n_columns, const char *const *headers, struct table **ret)
{
        struct table *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        t->n_columns = n_columns;
        for (size_t i = 0; i < n_columns; i++) {
                r = table_add(t, headers[i]);
                if (r < 0) {
                        table_free(t);
                        return r;
                }
        }
        *ret = t;
        return 0;
}

struct table *table_free(struct table *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add(struct table *t, const char *s)
{
        char **grown = realloc(t->cells, (t->n_cells + 1) * sizeof(*t->cells));

        if (!grown)
                return -ENOMEM;
        t->cells = grown;
        t->cells[t->n_cells] = strdup(s ?: "");
        if (!t->cells[t->n_cells])
                return -ENOMEM;
        t->n_cells++;
        return 0;
}

int table_add_u64(struct table *t, uint64_t v)
{
        char s[32];

        snprintf(s, sizeof(s), "%" PRIu64, v);
        return table_add(t, s);
}

int table_print(const struct table *t, bool legend)
{
        _cleanup_free_ size_t *widths = calloc(t->n_columns, sizeof(*widths));

        if (!widths)
                return log_oom();
        for (size_t i = legend ? 0 : t->n_columns; i < t->n_cells; i++) {
                size_t len = strlen(t->cells[i]);

                if (len > widths[i % t->n_columns])
                        widths[i % t->n_columns] = len;
        }
        for (size_t i = legend ? 0 : t->n_columns; i < t->n_cells; i++) {
                size_t c = i % t->n_columns;

                if (c + 1 == t->n_columns || i + 1 == t->n_cells)
                        printf("%s\n", t->cells[i]);
                else
                        printf("%-*s ", (int) widths[c], t->cells[i]);
        }
        return 0;
}
