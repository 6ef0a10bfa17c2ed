/*
 * msgr fuzz targets without libFuzzer: feeds each file named on the
 * command line (each file of a directory, in name order) to the target's
 * LLVMFuzzerTestOneInput(), once, in a buffer of exactly its size so that
 * AddressSanitizer sees a read past its end.  Built with the compiler of
 * the other tests by `make fuzz-replay`; t/fuzz.t runs it on the committed
 * corpora, so that an input that once crashed a target is tried by every
 * `make test` (and by `make test-asan` with the sanitizers).
 *
 * Prints "<n> inputs" on success; a crash or a sanitizer report ends the
 * run, naming the input on stderr first.
 */

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int msgr_replay_path(const char *path, size_t *count);


static int
msgr_replay_file(const char *path, size_t *count)
{
    FILE           *f;
    size_t          n;
    uint8_t        *buf;
    struct stat     st;

    f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }

    /* one byte more than nothing, so that malloc(0) is never asked */
    buf = malloc(st.st_size ? (size_t) st.st_size : 1);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "replay: out of memory for %s\n", path);
        return -1;
    }

    n = fread(buf, 1, (size_t) st.st_size, f);
    fclose(f);

    if (n != (size_t) st.st_size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        free(buf);
        return -1;
    }

    fprintf(stderr, "replay: %s\n", path);

    (void) LLVMFuzzerTestOneInput(buf, n);

    free(buf);
    (*count)++;

    return 0;
}


static int
msgr_replay_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static int
msgr_replay_dir(const char *path, size_t *count)
{
    int              rc;
    DIR             *d;
    char           **names, **more, *p;
    size_t           n, cap, i, len;
    struct dirent   *e;

    d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }

    names = NULL;
    n = 0;
    cap = 0;
    rc = 0;

    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }

        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            more = realloc(names, cap * sizeof(char *));
            if (more == NULL) {
                rc = -1;
                break;
            }
            names = more;
        }

        len = strlen(path) + 1 + strlen(e->d_name) + 1;
        p = malloc(len);
        if (p == NULL) {
            rc = -1;
            break;
        }

        snprintf(p, len, "%s/%s", path, e->d_name);
        names[n++] = p;
    }

    closedir(d);

    if (rc == 0 && n) {
        qsort(names, n, sizeof(char *), msgr_replay_cmp);
    }

    for (i = 0; i < n; i++) {
        if (rc == 0 && msgr_replay_path(names[i], count) != 0) {
            rc = -1;
        }
        free(names[i]);
    }

    free(names);

    if (rc != 0) {
        fprintf(stderr, "replay: %s failed\n", path);
    }

    return rc;
}


static int
msgr_replay_path(const char *path, size_t *count)
{
    struct stat  st;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }

    if (S_ISDIR(st.st_mode)) {
        return msgr_replay_dir(path, count);
    }

    return msgr_replay_file(path, count);
}


int
main(int argc, char **argv)
{
    int     i;
    size_t  count;

    if (LLVMFuzzerInitialize != NULL) {
        LLVMFuzzerInitialize(&argc, &argv);
    }

    count = 0;

    for (i = 1; i < argc; i++) {
        if (msgr_replay_path(argv[i], &count) != 0) {
            return 1;
        }
    }

    printf("%zu inputs\n", count);

    return 0;
}
