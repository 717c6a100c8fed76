#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bool arg_int(const char *s, long long lo, long long hi, long long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool arg_float(const char *s, float *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

int usage_error(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, cmd ? "wgllm %s: error: " : "wgllm%s: error: ", cmd ? cmd : "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nrun 'wgllm %s --help' for usage\n", cmd);
    else
        fprintf(stderr, "\nrun 'wgllm --help' for the commands\n");
    return 2;
}

int bad_value(const char *cmd, const char *opt, const char *value, const char *expect) {
    return usage_error(cmd, "invalid value '%s' for %s (%s)", value, opt, expect);
}

const char *arg_value(int argc, char **argv, int *i, const char *cmd) {
    if (*i + 1 >= argc) {
        usage_error(cmd, "option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool opt_int(const char *cmd, const char *opt, const char *v, long long lo, long long hi, long long *out) {
    if (arg_int(v, lo, hi, out)) return true;
    char expect[96];
    snprintf(expect, sizeof expect, "expected an integer in %lld..%lld", lo, hi);
    bad_value(cmd, opt, v, expect);
    return false;
}

bool opt_backend(const char *cmd, const char *opt, const char *v, wgllm_backend_kind *out) {
    if (wgllm_backend_kind_from_name(v, out)) return true;
    bad_value(cmd, opt, v, "choose " BACKEND_CHOICES);
    return false;
}

const char *choice_list(const char *const *names, char *buf, size_t size) {
    size_t n = 0, used = 0;
    while (names[n]) n++;
    buf[0] = 0;
    for (size_t i = 0; i < n && used < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + used, size - used, "%s%s", sep, names[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

char *read_stream(FILE *f, const char *name, size_t *len, char *err, size_t err_size) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (ferror(f)) {
            snprintf(err, err_size, "cannot read %s: %s", name, strerror(errno));
            free(buf);
            return NULL;
        }
        if (feof(f)) break;
        char *nb = cap < ((size_t)1 << 40) ? realloc(buf, cap * 2) : NULL;
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf) {
        snprintf(err, err_size, "%s: out of memory", name);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

char *read_file_bytes(const char *path, size_t *len, char *err, size_t err_size) {
    if (!strcmp(path, "-")) return read_stream(stdin, "standard input", len, err, err_size);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "'%s' is not a regular file", path);
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        snprintf(err, err_size, "cannot read '%s'", path);
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    *len = got;
    return buf;
}

bool stdin_has_text(void) {
    struct stat st; /* a closed standard input holds no text either */
    return fstat(STDIN_FILENO, &st) == 0 && !isatty(STDIN_FILENO);
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
