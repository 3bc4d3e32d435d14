/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Starts a private dbus-daemon (readiness: it prints its address once it
 * listens) and gmemd (readiness: READY=1 on our NOTIFY_SOCKET). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kvm-uapi.h"
#include "macro.h"
#include "util.h"

#define READY_TIMEOUT_MS 60000

static const char *env_or(const char *name, const char *fallback)
{
        const char *v = getenv(name);

        return v && *v ? v : fallback;
}

static int write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        if (!f)
                return negative_errno();
        fputs(text, f);
        return fclose(f) == 0 ? 0 : negative_errno();
}

static int start_bus(struct test_env *e, const struct test_env_options *o)
{
        char conf[512], text[2048];
        int pipefd[2];
        ssize_t n;

        snprintf(conf, sizeof(conf), "%s/bus.conf", e->dir);
        snprintf(text, sizeof(text),
                 "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
                 " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                 "<busconfig>\n"
                 "  <type>gmem-test</type>\n"
                 "  <listen>unix:abstract=%s/bus</listen>\n"
                 "  <auth>EXTERNAL</auth>\n"
                 "  <policy context=\"default\">\n"
                 "    <allow user=\"*\"/>\n"
                 "    <allow send_destination=\"*\"/>\n"
                 "    <allow receive_sender=\"*\"/>\n"
                 "  </policy>\n"
                 "  <include>%s</include>\n"
                 "%s"
                 "</busconfig>\n",
                 e->dir, env_or("GMEM_DBUS_POLICY", GMEM_TEST_DEFAULT_POLICY),
                 o->open_policy ? "  <!-- test only: let every uid reach gmemd so its own check is tested -->\n"
                                  "  <policy context=\"default\"><allow send_destination=\"org.gmem1\"/></policy>\n"
                                : "");
        if (write_file(conf, text) < 0)
                return negative_errno();

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        e->bus_pid = fork();
        if (e->bus_pid < 0)
                return negative_errno();
        if (e->bus_pid == 0) {
                /* Never outlive a test that aborted. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                char conf_arg[600], fd_arg[32];

                dup2(pipefd[1], 3);
                snprintf(conf_arg, sizeof(conf_arg), "--config-file=%s", conf);
                snprintf(fd_arg, sizeof(fd_arg), "--print-address=3");
                execlp("dbus-daemon", "dbus-daemon", conf_arg, "--nofork", "--nopidfile", fd_arg, (char *) NULL);
                _exit(127);
        }
        close(pipefd[1]);
        /* dbus-daemon prints its address only once it listens. */
        n = read(pipefd[0], e->address, sizeof(e->address) - 1);
        close(pipefd[0]);
        if (n <= 0) {
                fprintf(stderr, "harness: dbus-daemon did not start (see its output above)\n");
                return -EIO;
        }
        e->address[n] = '\0';
        e->address[strcspn(e->address, "\n")] = '\0';
        return 0;
}

static int open_notify_socket(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return negative_errno();
        if (strlen(path) >= sizeof(sa.sun_path)) {
                safe_close(fd);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                safe_close(fd);
                return negative_errno();
        }
        return fd;
}

/* Keep or drop what a FDSTORE=1 or FDSTOREREMOVE=1 message names. */
static void fdstore_apply(struct test_env *e, const char *text, const int *fds, size_t n_fds)
{
        const char *name = strstr(text, "FDNAME=");
        char fdname[256] = "";
        size_t kept = 0;

        if (name)
                snprintf(fdname, sizeof(fdname), "%.*s", (int) strcspn(name + 7, "\n"), name + 7);
        if (e->fd_store && strstr(text, "FDSTORE=1"))
                /* systemd closes what does not fit, and only logs it. */
                for (; kept < n_fds && e->n_store < (e->fdstore_max ?: TEST_FDSTORE_MAX); kept++) {
                        e->store[e->n_store].fd = fds[kept];
                        snprintf(e->store[e->n_store++].name, sizeof(e->store[0].name), "%s", fdname);
                }
        for (size_t i = 0; e->fd_store && strstr(text, "FDSTOREREMOVE=1") && i < e->n_store;) {
                if (streq(e->store[i].name, fdname)) {
                        safe_close(e->store[i].fd);
                        e->store[i] = e->store[--e->n_store];
                } else
                        i++;
        }
        for (size_t i = kept; i < n_fds; i++)
                safe_close(fds[i]);
}

/* One notification, with the fds it carries: 1 if READY=1, 0 if another,
 * -EAGAIN when none is waiting. */
static int handle_notify(struct test_env *e, int notify_fd)
{
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 16)];
        } control;
        char text[4096];
        struct iovec iov = { .iov_base = text, .iov_len = sizeof(text) - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                             .msg_controllen = sizeof(control) };
        int fds[16];
        size_t n_fds = 0;
        ssize_t n;

        n = recvmsg(notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return negative_errno();
        text[n] = '\0';
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) && n_fds < 16; i++)
                                memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fdstore_apply(e, text, fds, n_fds);
        return strstr(text, "READY=1") ? 1 : 0;
}

int test_env_fdstore_sync(struct test_env *e)
{
        int k;

        while ((k = handle_notify(e, e->notify_fd)) >= 0)
                ;
        return k == -EAGAIN ? 0 : k;
}

static int wait_ready(struct test_env *e, int notify_fd)
{
        struct pollfd p[2] = {
                { .fd = notify_fd, .events = POLLIN },
                { .fd = e->daemon_pidfd, .events = POLLIN },
        };

        for (;;) {
                int k = poll(p, 2, READY_TIMEOUT_MS);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        fprintf(stderr, "harness: gmemd sent no READY=1 within %d ms\n", READY_TIMEOUT_MS);
                        return -ETIMEDOUT;
                }
                if (p[0].revents & POLLIN) {
                        k = handle_notify(e, notify_fd);
                        if (k > 0)
                                return 0;
                        if (k < 0 && k != -EAGAIN)
                                return k;
                }
                if (p[1].revents & POLLIN) {
                        fprintf(stderr, "harness: gmemd exited before it was ready\n");
                        return -ECHILD;
                }
        }
}

/* In the child: the stored fds at 3, 4, ... as $LISTEN_FDS says, and no
 * other fd beyond stderr, as systemd starts a service. */
static void pass_stored_fds(struct test_env *e)
{
        static int moved[TEST_FDSTORE_MAX];
        char *names = calloc(TEST_FDSTORE_MAX, sizeof(e->store[0].name) + 1), number[32];
        int first = 3 + (int) e->n_store;

        if (e->n_store == 0 || !names) {
                close_range(3, ~0U, 0);
                return;
        }
        for (size_t i = 0; i < e->n_store; i++)
                moved[i] = fcntl(e->store[i].fd, F_DUPFD, first);
        for (size_t i = 0; i < e->n_store; i++) {
                dup2(moved[i], 3 + (int) i);
                close(moved[i]);
                strcat(names, i ? ":" : "");
                strcat(names, e->store[i].name);
        }
        close_range((unsigned) first, ~0U, 0);
        snprintf(number, sizeof(number), "%zu", e->n_store);
        setenv("LISTEN_FDS", number, 1);
        if (e->listen != TEST_LISTEN_NO_NAMES)
                setenv("LISTEN_FDNAMES", names, 1);
        snprintf(number, sizeof(number), "%d", e->listen == TEST_LISTEN_OTHER_PID ? (int) getppid() : (int) getpid());
        setenv("LISTEN_PID", number, 1);
        free(names);
}

static int spawn_daemon(struct test_env *e, int notify_fd)
{
        char config[512], notify[512];

        snprintf(config, sizeof(config), "%s/gmemd.json", e->dir);
        snprintf(notify, sizeof(notify), "%s/notify", e->dir);
        e->daemon_pid = fork();
        if (e->daemon_pid < 0)
                return negative_errno();
        if (e->daemon_pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                char bus_arg[400], config_arg[600];

                pass_stored_fds(e);
                setenv("NOTIFY_SOCKET", notify, 1);
                if (e->fdstore_max > 0) {
                        char max[32];

                        snprintf(max, sizeof(max), "%u", e->fdstore_max);
                        setenv("FDSTORE", max, 1);
                }
                snprintf(bus_arg, sizeof(bus_arg), "--bus=%s", e->address);
                snprintf(config_arg, sizeof(config_arg), "--config=%s", config);
                execl(env_or("GMEMD", GMEM_TEST_DEFAULT_GMEMD), "gmemd", bus_arg, config_arg, (char *) NULL);
                _exit(127);
        }
        e->daemon_pidfd = (int) syscall(SYS_pidfd_open, e->daemon_pid, 0);
        if (e->daemon_pidfd < 0)
                return negative_errno();
        return wait_ready(e, notify_fd);
}

int test_env_stop_daemon(struct test_env *e, int sig)
{
        bool alive = test_env_daemon_alive(e);
        int status;

        if (e->daemon_pid <= 0)
                return -ESRCH;
        kill(e->daemon_pid, sig);
        if (waitpid(e->daemon_pid, &status, 0) < 0)
                return negative_errno();
        e->daemon_pid = 0;
        e->daemon_pidfd = safe_close(e->daemon_pidfd);
        if (!alive) {
                fprintf(stderr, "harness: gmemd had died during the test\n");
                return -ECHILD;
        }
        if (sig == SIGKILL ? !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL
                           : !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "harness: gmemd ended badly on signal %d (status 0x%x)\n", sig, status);
                return -ECHILD;
        }
        /* What it sent before it ended is queued on the socket still. */
        return e->fd_store ? test_env_fdstore_sync(e) : 0;
}

int test_env_start_daemon_again(struct test_env *e)
{
        return e->fd_store ? spawn_daemon(e, e->notify_fd) : -EINVAL;
}

int test_env_restart_daemon(struct test_env *e, int sig)
{
        int r = test_env_stop_daemon(e, sig);

        return r < 0 ? r : test_env_start_daemon_again(e);
}

int test_env_fdstore_metadata(struct test_env *e, const char *fdname, char *buf, size_t size)
{
        for (size_t i = 0; i < e->n_store; i++) {
                ssize_t n;

                if (!streq(e->store[i].name, fdname) || fd_is_guest_memfd(e->store[i].fd))
                        continue;
                n = pread(e->store[i].fd, buf, size - 1, 0);
                if (n < 0)
                        return negative_errno();
                buf[n] = '\0';
                return 0;
        }
        return -ENOENT;
}

static int start_daemon(struct test_env *e, const struct test_env_options *o)
{
        char config[512], notify[512];
        _cleanup_close_ int notify_fd = -1;
        int r;

        snprintf(config, sizeof(config), "%s/gmemd.json", e->dir);
        if (write_file(config, o->daemon_config ?: "{ \"allowed_group\": \"65534\", \"log_level\": \"debug\" }") < 0)
                return negative_errno();
        snprintf(notify, sizeof(notify), "%s/notify", e->dir);
        notify_fd = open_notify_socket(notify);
        if (notify_fd < 0)
                return notify_fd;
        r = spawn_daemon(e, notify_fd);
        /* Without the fd store, gmemd's later notifications go nowhere. */
        if (e->fd_store)
                e->notify_fd = TAKE_FD(notify_fd);
        return r;
}

int test_env_start(struct test_env *e, const struct test_env_options *o)
{
        static const struct test_env_options defaults = {};
        int r;

        o = o ?: &defaults;
        *e = (struct test_env) { .daemon_pidfd = -1, .notify_fd = -1, .fd_store = o->fd_store,
                                 .fdstore_max = o->fdstore_max };
        snprintf(e->dir, sizeof(e->dir), "%s/gmem-test-XXXXXX", env_or("TMPDIR", "/tmp"));
        if (!mkdtemp(e->dir))
                return negative_errno();
        chmod(e->dir, 0755);
        r = start_bus(e, o);
        if (r < 0)
                return r;
        if (o->no_daemon)
                return 0;
        r = start_daemon(e, o);
        if (r < 0)
                test_env_stop(e);
        return r;
}

bool test_env_daemon_alive(struct test_env *e)
{
        struct pollfd p = { .fd = e->daemon_pidfd, .events = POLLIN };

        return e->daemon_pid > 0 && poll(&p, 1, 0) == 0;
}

/* Whether gmemd's fd @name (in /proc/PID/fd @dir) counts as held: not one
 * that libsystemd opens and closes by itself, and not one closed meanwhile.
 * sd-event keeps a timerfd per clock only while a timer is armed, and reads
 * /proc/sys/kernel/random/boot_id once, when it arms its first timer (to
 * spread timers over their accuracy window): after a call gmemd already
 * answered. */
static bool fd_held(const char *dir, const char *name, FILE *show)
{
        char path[512], target[256];
        ssize_t len;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        len = readlink(path, target, sizeof(target) - 1);
        if (len < 0)
                return false;
        target[len] = '\0';
        if (show)
                fprintf(show, "   gmemd fd %s -> %s\n", name, target);
        return !streq(target, "anon_inode:[timerfd]") && !streq(target, "/proc/sys/kernel/random/boot_id");
}

static int count_fds(pid_t pid, FILE *show)
{
        struct dirent *de;
        char dir[64];
        int n = 0;
        DIR *d;

        snprintf(dir, sizeof(dir), "/proc/%d/fd", (int) pid);
        d = opendir(dir);
        if (!d)
                return negative_errno();
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && fd_held(dir, de->d_name, show))
                        n++;
        closedir(d);
        return n;
}

static int count_entries(pid_t pid, const char *what)
{
        char path[64];
        int n = 0;

        if (streq(what, "fd"))
                return count_fds(pid, NULL);
        /* Only guest memory mappings: the allocator's own vary run to run. */
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        FILE *f = fopen(path, "re");
        char line[512];

        if (!f)
                return negative_errno();
        while (fgets(line, sizeof(line), f))
                n += strstr(line, "kvm-gmem") != NULL;
        fclose(f);
        return n;
}

int test_env_daemon_fds(struct test_env *e)
{
        return count_entries(e->daemon_pid, "fd");
}

int test_env_show_daemon_fds(struct test_env *e, FILE *f)
{
        return count_fds(e->daemon_pid, f);
}

int test_env_daemon_mappings(struct test_env *e)
{
        return count_entries(e->daemon_pid, "maps");
}

static int stop_child(pid_t pid, const char *name)
{
        int status;

        if (pid <= 0)
                return 0;
        kill(pid, SIGTERM);
        if (waitpid(pid, &status, 0) < 0)
                return negative_errno();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "harness: %s ended badly (status 0x%x)\n", name, status);
                return -ECHILD;
        }
        return 0;
}

int test_env_stop(struct test_env *e)
{
        int r = e->daemon_pid > 0 ? test_env_stop_daemon(e, SIGTERM) : 0;
        char cmd[300];

        e->notify_fd = safe_close(e->notify_fd);
        for (size_t i = 0; i < e->n_store; i++)
                safe_close(e->store[i].fd);
        e->n_store = 0;
        stop_child(e->bus_pid, "dbus-daemon");
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        if (e->dir[0] && system(cmd) != 0)
                fprintf(stderr, "harness: could not remove %s\n", e->dir);
        return r;
}

int test_kvm_vm_stat(int vm_fd, const char *name, uint64_t *ret)
{
        _cleanup_close_ int fd = ioctl(vm_fd, KVM_GET_STATS_FD, NULL);
        _cleanup_free_ char *descs = NULL;
        struct kvm_stats_header h;
        size_t desc_size, total;

        if (fd < 0)
                return negative_errno();
        if (pread(fd, &h, sizeof(h), 0) != sizeof(h))
                return -EIO;
        desc_size = sizeof(struct kvm_stats_desc) + h.name_size;
        total = desc_size * h.num_desc;
        descs = malloc(total);
        if (!descs)
                return -ENOMEM;
        if (pread(fd, descs, total, h.desc_offset) != (ssize_t) total)
                return -EIO;
        for (uint32_t i = 0; i < h.num_desc; i++) {
                const struct kvm_stats_desc *d = (const struct kvm_stats_desc *) (descs + i * desc_size);

                if (strncmp(d->name, name, h.name_size) != 0)
                        continue;
                if (pread(fd, ret, sizeof(*ret), h.data_offset + d->offset) != sizeof(*ret))
                        return -EIO;
                return 0;
        }
        return -ENOENT;
}

int test_node_sec_page_tables(unsigned node, uint64_t *ret)
{
        _cleanup_close_ int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
        char path[64], line[128];
        unsigned long long kb;
        int r = -ENOENT;
        FILE *f;

        if (fd < 0 || write(fd, "1", 1) != 1)
                return negative_errno();
        snprintf(path, sizeof(path), "/sys/devices/system/node/node%u/meminfo", node);
        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        while (r == -ENOENT && fgets(line, sizeof(line), f))
                if (sscanf(line, "Node %*u SecPageTables: %llu kB", &kb) == 1) {
                        *ret = kb * 1024 / (uint64_t) sysconf(_SC_PAGESIZE);
                        r = 0;
                }
        fclose(f);
        return r;
}
