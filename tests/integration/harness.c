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

static int wait_ready(struct test_env *e, int notify_fd)
{
        struct pollfd p[2] = {
                { .fd = notify_fd, .events = POLLIN },
                { .fd = e->daemon_pidfd, .events = POLLIN },
        };
        char buf[4096];

        for (;;) {
                int k = poll(p, 2, READY_TIMEOUT_MS);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        fprintf(stderr, "harness: gmemd sent no READY=1 within %d ms\n", READY_TIMEOUT_MS);
                        return -ETIMEDOUT;
                }
                if (p[0].revents & POLLIN) {
                        ssize_t n = recv(notify_fd, buf, sizeof(buf) - 1, 0);

                        if (n < 0)
                                return negative_errno();
                        buf[n] = '\0';
                        if (strstr(buf, "READY=1"))
                                return 0;
                }
                if (p[1].revents & POLLIN) {
                        fprintf(stderr, "harness: gmemd exited before it was ready\n");
                        return -ECHILD;
                }
        }
}

static int start_daemon(struct test_env *e, const struct test_env_options *o)
{
        char config[512], notify[512];
        _cleanup_close_ int notify_fd = -1;

        snprintf(config, sizeof(config), "%s/gmemd.json", e->dir);
        if (write_file(config, o->daemon_config ?: "{ \"allowed_group\": \"65534\", \"log_level\": \"debug\" }") < 0)
                return negative_errno();
        snprintf(notify, sizeof(notify), "%s/notify", e->dir);
        notify_fd = open_notify_socket(notify);
        if (notify_fd < 0)
                return notify_fd;

        e->daemon_pid = fork();
        if (e->daemon_pid < 0)
                return negative_errno();
        if (e->daemon_pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                char bus_arg[400], config_arg[600];

                setenv("NOTIFY_SOCKET", notify, 1);
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

int test_env_start(struct test_env *e, const struct test_env_options *o)
{
        static const struct test_env_options defaults = {};
        int r;

        *e = (struct test_env) { .daemon_pidfd = -1 };
        o = o ?: &defaults;
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

static int count_entries(pid_t pid, const char *what)
{
        char path[64];
        int n = 0;

        if (streq(what, "fd")) {
                DIR *d;
                struct dirent *de;

                snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
                d = opendir(path);
                if (!d)
                        return negative_errno();
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                n++;
                closedir(d);
                return n;
        }
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
        bool alive = e->daemon_pid <= 0 || test_env_daemon_alive(e);
        int r = stop_child(e->daemon_pid, "gmemd");
        char cmd[300];

        safe_close(e->daemon_pidfd);
        stop_child(e->bus_pid, "dbus-daemon");
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        if (e->dir[0] && system(cmd) != 0)
                fprintf(stderr, "harness: could not remove %s\n", e->dir);
        if (!alive) {
                fprintf(stderr, "harness: gmemd had died during the test\n");
                return -ECHILD;
        }
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
