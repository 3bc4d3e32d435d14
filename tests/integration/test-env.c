/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gmem-test-env: run one command against a private bus with a real gmemd,
 * exporting GMEM_BUS_ADDRESS and GMEMD_PID; fails if gmemd dies meanwhile. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "util.h"

int main(int argc, char *argv[])
{
        struct test_env_options o = {};
        struct test_env e;
        char pid[32];
        int i, status, r;
        pid_t child;

        for (i = 1; i < argc && !streq(argv[i], "--"); i++) {
                if (streq(argv[i], "--open-policy"))
                        o.open_policy = true;
                else if (streq(argv[i], "--config") && i + 1 < argc)
                        o.daemon_config = argv[++i];
                else {
                        fprintf(stderr, "usage: gmem-test-env [--open-policy] [--config JSON] -- COMMAND...\n");
                        return 2;
                }
        }
        if (i + 1 >= argc) {
                fprintf(stderr, "usage: gmem-test-env [--open-policy] [--config JSON] -- COMMAND...\n");
                return 2;
        }
        r = test_env_start(&e, &o);
        if (r < 0)
                return 1;
        snprintf(pid, sizeof(pid), "%d", (int) e.daemon_pid);
        setenv("GMEM_BUS_ADDRESS", e.address, 1);
        setenv("GMEMD_PID", pid, 1);

        child = fork();
        if (child == 0) {
                execvp(argv[i + 1], argv + i + 1);
                fprintf(stderr, "gmem-test-env: cannot run %s: %m\n", argv[i + 1]);
                _exit(127);
        }
        if (child < 0 || waitpid(child, &status, 0) < 0)
                status = 1 << 8;
        r = test_env_stop(&e);
        if (r < 0)
                return 1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
