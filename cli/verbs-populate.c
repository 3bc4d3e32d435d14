/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmemctl populate: PopulateWithOptions with its PopulateProgress signals
 * shown as a bar (terminal), lines (otherwise) or JSON lines; Ctrl-C asks
 * gmemd to CancelPopulate, a second one leaves (which cancels too). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bus-errors.h"
#include "gmemctl.h"
#include "util.h"

#define BAR_WIDTH 40

struct populate_ui {
        const struct args *args;
        const char *path;
        uint64_t offset, length, last_done;
        bool tty, bar_drawn;
        unsigned interrupts;
        sd_bus *bus;
        sd_event *event;
        sd_bus_message *reply;
};

static int print_json_line(json_object *o)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

        if (!s)
                return log_oom();
        puts(s);
        fflush(stdout);
        return 0;
}

static int print_progress_json(struct populate_ui *ui, uint64_t done, bool final)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (json_add(o, "path", json_object_new_string(ui->path)) < 0 ||
            json_add(o, "offset", json_object_new_uint64(ui->offset)) < 0 ||
            json_add(o, "length", json_object_new_uint64(ui->length)) < 0 ||
            json_add(o, "done", json_object_new_uint64(done)) < 0 ||
            json_add(o, "final", json_object_new_boolean(final)) < 0)
                return log_oom();
        return print_json_line(o);
}

static void print_progress_human(struct populate_ui *ui, uint64_t done)
{
        char d[FORMAT_BYTES_MAX], t[FORMAT_BYTES_MAX], bar[BAR_WIDTH + 1];
        unsigned percent = ui->length ? (unsigned) (done * 100 / ui->length) : 100;
        unsigned filled = percent * BAR_WIDTH / 100;

        format_bytes(d, sizeof(d), done);
        format_bytes(t, sizeof(t), ui->length);
        if (!ui->tty) {
                printf("populating %s: %s of %s (%u%%)\n", ui->path, d, t, percent);
                fflush(stdout);
                return;
        }
        memset(bar, '#', filled);
        memset(bar + filled, '.', BAR_WIDTH - filled);
        bar[BAR_WIDTH] = '\0';
        /* Redrawn in place: carriage return, the bar, erase to the end of line. */
        printf("\r[%s] %3u%% %s / %s\033[K", bar, percent, d, t);
        fflush(stdout);
        ui->bar_drawn = true;
}

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        struct populate_ui *ui = userdata;
        uint64_t offset, length, done;
        int final, r;

        r = sd_bus_message_read(m, "tttb", &offset, &length, &done, &final);
        /* Another populate of the same region is not ours to show. */
        if (r < 0 || offset != ui->offset || length != ui->length)
                return 0;
        ui->last_done = done;
        if (ui->args->json)
                return print_progress_json(ui, done, final);
        print_progress_human(ui, done);
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        struct populate_ui *ui = userdata;

        ui->reply = sd_bus_message_ref(m);
        return sd_event_exit(ui->event, 0);
}

static int on_interrupt(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct populate_ui *ui = userdata;
        int r;

        if (++ui->interrupts > 1)
                /* Leaving drops the connection: gmemd cancels for a caller that is gone. */
                return sd_event_exit(ui->event, -ECANCELED);
        fprintf(stderr, "%sgmemctl: cancelling (again to leave at once)\n", ui->bar_drawn ? "\n" : "");
        r = sd_bus_call_method_async(ui->bus, NULL, GMEM_BUS_NAME, ui->path, GMEM_REGION_INTERFACE, "CancelPopulate",
                                     NULL, NULL, NULL);
        if (r < 0)
                return sd_event_exit(ui->event, r);
        return 0;
}

static int send_populate(struct populate_ui *ui)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(ui->bus, &m, GMEM_BUS_NAME, ui->path, GMEM_REGION_INTERFACE,
                                           "PopulateWithOptions");
        if (r >= 0)
                r = sd_bus_message_append(m, "tt", ui->offset, ui->length);
        if (r >= 0 && ui->args->workers)
                r = sd_bus_message_append(m, "a{sv}", 1, "workers", "u", ui->args->workers);
        else if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        /* No timeout: populating terabytes takes as long as it takes, and Ctrl-C stops it. */
        if (r >= 0)
                r = sd_bus_call_async(ui->bus, NULL, m, on_reply, ui, UINT64_MAX);
        return r;
}

static int setup(struct populate_ui *ui)
{
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        r = sd_event_default(&ui->event);
        if (r >= 0)
                r = sd_bus_attach_event(ui->bus, ui->event, 0);
        if (r >= 0)
                r = sd_event_add_signal(ui->event, NULL, SIGINT, on_interrupt, ui);
        if (r >= 0)
                r = sd_event_add_signal(ui->event, NULL, SIGTERM, on_interrupt, ui);
        /* In place at the bus before the call: no signal of ours is missed. */
        if (r >= 0)
                r = sd_bus_match_signal(ui->bus, NULL, GMEM_BUS_NAME, ui->path, GMEM_REGION_INTERFACE,
                                        "PopulateProgress", on_progress, ui);
        return r;
}

/* The report's a(ut) resident and a(is) workers as JSON arrays. */
static int read_report(sd_bus_message *m, json_object **ret_resident, json_object **ret_workers)
{
        json_object *resident = json_object_new_array(), *workers = json_object_new_array();
        const char *cpus;
        uint64_t bytes;
        uint32_t node;
        int32_t wnode;
        int r;

        *ret_resident = resident;
        *ret_workers = workers;
        if (!resident || !workers)
                return -ENOMEM;
        r = sd_bus_message_enter_container(m, 'a', "(ut)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(ut)", &node, &bytes)) > 0) {
                json_object *o = json_object_new_object();

                if (json_add(o, "node", json_object_new_uint64(node)) < 0 ||
                    json_add(o, "bytes", json_object_new_uint64(bytes)) < 0 || json_object_array_add(resident, o) < 0)
                        return -ENOMEM;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(is)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(is)", &wnode, &cpus)) > 0) {
                json_object *o = json_object_new_object();

                if (json_add(o, "node", json_object_new_int(wnode)) < 0 ||
                    json_add(o, "cpus", json_object_new_string(cpus)) < 0 || json_object_array_add(workers, o) < 0)
                        return -ENOMEM;
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

static void print_report_human(struct populate_ui *ui, json_object *resident, json_object *workers)
{
        char bytes[FORMAT_BYTES_MAX];
        size_t n = json_object_array_length(resident), w = json_object_array_length(workers);

        if (ui->bar_drawn)
                putchar('\n');
        printf("Populated %s of %s at offset %" PRIu64 " with %zu worker(s)", format_bytes(bytes, sizeof(bytes),
               ui->length), ui->path, ui->offset, w);
        for (size_t i = 0; i < w; i++) {
                json_object *o = json_object_array_get_idx(workers, i), *node, *cpus;

                if (json_object_object_get_ex(o, "node", &node) && json_object_object_get_ex(o, "cpus", &cpus))
                        printf("%s%s%d on CPUs %s", i ? ", " : " (", json_object_get_int(node) < 0 ? "no node " : "node ",
                               json_object_get_int(node), json_object_get_string(cpus));
        }
        printf("%s.\nResident in the range: ", w ? ")" : "");
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(resident, i), *node, *b;

                if (json_object_object_get_ex(o, "node", &node) && json_object_object_get_ex(o, "bytes", &b))
                        printf("%s%s on node %d", i ? ", " : "",
                               format_bytes(bytes, sizeof(bytes), json_object_get_uint64(b)),
                               json_object_get_int(node));
        }
        printf("%s\n", n ? "" : "not measurable (private memory)");
}

static int finish(struct populate_ui *ui)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *resident = NULL, *workers = NULL;
        const sd_bus_error *e = sd_bus_message_get_error(ui->reply);
        int r = 0;

        if (!e)
                r = read_report(ui->reply, &resident, &workers);
        if (!ui->args->json) {
                if (e) {
                        if (ui->bar_drawn)
                                putchar('\n');
                        r = log_bus_error(e, -sd_bus_error_get_errno(e), "Populate failed");
                } else if (r >= 0)
                        print_report_human(ui, resident, workers);
                json_object_put(resident);
                json_object_put(workers);
                return r;
        }
        if (json_add(o, "path", json_object_new_string(ui->path)) < 0 ||
            json_add(o, "offset", json_object_new_uint64(ui->offset)) < 0 ||
            json_add(o, "length", json_object_new_uint64(ui->length)) < 0 ||
            json_add(o, "done", json_object_new_uint64(e ? ui->last_done : ui->length)) < 0 ||
            json_add(o, "result", json_object_new_string(!e ? "populated" :
                                                         streq(e->name, GMEM_ERROR_CANCELLED) ? "cancelled" : "failed")) < 0)
                return log_oom();
        if (e && (json_add(o, "error", json_object_new_string(e->name)) < 0 ||
                  json_add(o, "message", json_object_new_string(e->message ?: "")) < 0))
                return log_oom();
        if (!e && (json_add(o, "resident", resident) < 0 || json_add(o, "workers", workers) < 0))
                return log_oom();
        r = print_json_line(o);
        return e ? -sd_bus_error_get_errno(e) : r;
}

int verb_populate(const struct args *a)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_free_ char *path = NULL;
        struct region_props p = {};
        struct populate_ui ui = { .args = a, .tty = isatty(STDOUT_FILENO) };
        int r;

        r = open_region(a, &bus, &path, &p);
        if (r < 0)
                return r;
        ui.bus = bus;
        ui.path = path;
        ui.offset = a->have_range ? a->offset : 0;
        ui.length = a->have_range ? a->length : p.size;
        region_props_done(&p);
        r = setup(&ui);
        event = ui.event;
        if (r >= 0)
                r = send_populate(&ui);
        if (r < 0)
                return log_error_errno(r, "cannot start populating %s: %m", path);
        r = sd_event_loop(event);
        if (r == -ECANCELED) {
                if (ui.bar_drawn)
                        putchar('\n');
                return log_error_errno(r, "left without waiting: gmemd cancels the populate of %s as gmemctl's "
                                       "connection goes", path);
        }
        if (r < 0 || !ui.reply)
                return log_error_errno(r < 0 ? r : -EIO, "waiting for the populate of %s failed: %m", path);
        r = finish(&ui);
        sd_bus_message_unref(ui.reply);
        return r;
}
