/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a harness without libFuzzer: feeds every file named on the command
 * line, or found in a directory named there, to LLVMFuzzerTestOneInput once,
 * so the corpora (and every crash ever found) are regression tests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "macro.h"

static const char *name_of(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

static int run_file(int dir_fd, const char *name, const char *shown)
{
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ uint8_t *data = NULL;
        size_t size = 0, allocated = 0;
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "cannot open %s: %m\n", shown);
                return -errno;
        }
        if (!S_ISREG(st.st_mode))
                return 0;
        for (;;) {
                ssize_t n;

                if (size == allocated) {
                        uint8_t *grown = realloc(data, allocated = allocated * 2 + 4096);

                        if (!grown)
                                return -ENOMEM;
                        data = grown;
                }
                n = read(fd, data + size, allocated - size);
                if (n < 0) {
                        fprintf(stderr, "cannot read %s: %m\n", shown);
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        /* Exactly @size bytes, like libFuzzer, so ASan sees any over-read. */
        uint8_t *exact = malloc(size ? size : 1);
        if (!exact)
                return -ENOMEM;
        memcpy(exact, data, size);
        fuzz_expect = !strncmp(name_of(name), "bad-", 4)     ? FUZZ_EXPECT_INVALID
                      : !strncmp(name_of(name), "valid-", 6) ? FUZZ_EXPECT_VALID
                                                              : FUZZ_EXPECT_ANY;
        printf("%s (%zu bytes)%s\n", shown, size,
               fuzz_expect == FUZZ_EXPECT_ANY ? "" : fuzz_expect == FUZZ_EXPECT_VALID ? ", must be accepted"
                                                                                       : ", must be refused");
        fflush(stdout);
        LLVMFuzzerTestOneInput(exact, size);
        free(exact);
        return 1;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Files in name order, so a failure is reproducible from the log. */
static int run_dir(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        int count = 0, r = 0;

        if (!d) {
                fprintf(stderr, "cannot open %s: %m\n", path);
                return -errno;
        }
        while ((de = readdir(d))) {
                char **grown;

                if (de->d_name[0] == '.')
                        continue;
                grown = realloc(names, (n + 1) * sizeof(*names));
                if (!grown || !(grown[n] = strdup(de->d_name))) {
                        names = grown ? grown : names;
                        r = -ENOMEM;
                        break;
                }
                names = grown;
                n++;
        }
        if (r == 0) {
                qsort(names, n, sizeof(*names), cmp_names);
                for (size_t i = 0; i < n && r >= 0; i++) {
                        char shown[4096];

                        snprintf(shown, sizeof(shown), "%s/%s", path, names[i]);
                        r = run_file(dirfd(d), names[i], shown);
                        count += r > 0;
                }
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        closedir(d);
        return r < 0 ? r : count;
}

int main(int argc, char *argv[])
{
        int total = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR-OR-FILE...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "cannot stat %s: %m\n", argv[i]);
                        return 1;
                }
                r = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(AT_FDCWD, argv[i], argv[i]);
                if (r < 0)
                        return 1;
                total += r;
        }
        if (total == 0) {
                /* An empty corpus would make this test pass vacuously. */
                fprintf(stderr, "no inputs found\n");
                return 1;
        }
        printf("%d input(s) ran without a crash\n", total);
        return 0;
}
