/* Shared-memory model cache: see model_cache.h for the layout and the guarantees.
 *
 * Crash safety comes from the order of operations, all under the entry's flock:
 *   1. the old sidecar is removed first, so no sidecar can ever describe a file being rebuilt;
 *   2. the copy goes to NAME.partial, is fsync'ed, then renamed to NAME.gguf;
 *   3. the sidecar is written to NAME.meta.partial, fsync'ed, renamed to NAME.meta.
 * A process killed at any point leaves either no sidecar (rebuilt next time) or a complete
 * entry. The content hash in the sidecar also catches a cached file changed afterwards. */
#include "server/model_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define CACHE_FORMAT_LINE "wgllm-model-cache 1"
#define COPY_CHUNK ((size_t)1 << 22) /* 4 MiB per read/write */
#define META_MAX 8192                /* a sidecar larger than this is not ours */

typedef struct {
    char dir[PATH_MAX];
    char data[PATH_MAX];
    char partial[PATH_MAX];
    char meta[PATH_MAX];
    char meta_partial[PATH_MAX];
    char lock[PATH_MAX];
} entry_paths;

typedef struct {
    uint64_t size;
    int64_t mtime_ns;
    uint64_t hash;
} entry_meta;

static int fail(char *err, size_t err_size, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int64_t mtime_ns(const struct stat *st) {
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + (int64_t)st->st_mtim.tv_nsec;
}

void wg_model_cache_default_options(wg_model_cache_options *opts) {
    opts->allow_hardlink = 1;
    opts->copy_chunk_delay_us = 0;
    const char *delay = getenv("WGLLM_CACHE_COPY_CHUNK_DELAY_US");
    if (delay && *delay) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(delay, &end, 10);
        if (!errno && end && !*end && v <= 10000000UL) opts->copy_chunk_delay_us = (unsigned)v;
    }
}

static void sleep_us(unsigned us) {
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads up to n bytes (fewer only at end of file); -1 on error. */
static ssize_t read_full(int fd, uint8_t *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int make_paths(const char *cache_dir_abs, const char *source_abs, entry_paths *p, char *err,
                      size_t err_size) {
    char name[17];
    snprintf(name, sizeof name, "%016" PRIx64, wg_xxh64(source_abs, strlen(source_abs), 0));
    struct {
        char *dst;
        const char *suffix;
    } items[] = {{p->data, ".gguf"},    {p->partial, ".partial"},       {p->meta, ".meta"},
                 {p->lock, ".lock"},     {p->meta_partial, ".meta.partial"}};
    if ((size_t)snprintf(p->dir, sizeof p->dir, "%s", cache_dir_abs) >= sizeof p->dir)
        return fail(err, err_size, "cache path too long");
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        int n = snprintf(items[i].dst, PATH_MAX, "%s/%s%s", cache_dir_abs, name, items[i].suffix);
        if (n < 0 || n >= PATH_MAX) return fail(err, err_size, "cache path too long");
    }
    return 0;
}

/* Parses "KEY VALUE\n" at *cursor with VALUE an unsigned number in base; advances *cursor. */
static int parse_field(const char **cursor, const char *key, int base, uint64_t *out) {
    const char *s = *cursor;
    size_t klen = strlen(key);
    if (strncmp(s, key, klen) != 0 || s[klen] != ' ') return -1;
    s += klen + 1;
    if (!((*s >= '0' && *s <= '9') || (base == 16 && ((*s >= 'a' && *s <= 'f'))))) return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || !end || *end != '\n') return -1;
    *out = (uint64_t)v;
    *cursor = end + 1;
    return 0;
}

static int read_meta(const char *path, entry_meta *m) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[META_MAX + 1];
    ssize_t n = read_full(fd, (uint8_t *)buf, META_MAX + 1);
    close(fd);
    if (n <= 0 || n > META_MAX) return -1;
    buf[n] = '\0';
    if (memchr(buf, '\0', (size_t)n)) return -1;
    const char *c = buf;
    size_t flen = strlen(CACHE_FORMAT_LINE);
    if (strncmp(c, CACHE_FORMAT_LINE "\n", flen + 1) != 0) return -1;
    c += flen + 1;
    uint64_t size, mtime, hash;
    if (parse_field(&c, "size", 10, &size) || parse_field(&c, "mtime_ns", 10, &mtime) ||
        parse_field(&c, "xxh64", 16, &hash))
        return -1;
    if (strncmp(c, "source ", 7) != 0 || buf[n - 1] != '\n') return -1; /* informational, must be whole */
    if (mtime > (uint64_t)INT64_MAX) return -1;
    m->size = size;
    m->mtime_ns = (int64_t)mtime;
    m->hash = hash;
    return 0;
}

static int write_meta(const entry_paths *p, const entry_meta *m, const char *source_abs, char *err,
                      size_t err_size) {
    char buf[META_MAX];
    int n = snprintf(buf, sizeof buf, CACHE_FORMAT_LINE "\nsize %" PRIu64 "\nmtime_ns %" PRId64 "\nxxh64 %016" PRIx64
                     "\nsource %s\n", m->size, m->mtime_ns, m->hash, source_abs);
    if (n < 0 || (size_t)n >= sizeof buf) return fail(err, err_size, "cache sidecar too long");
    int fd = open(p->meta_partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fail(err, err_size, "cannot write %s: %s", p->meta_partial, strerror(errno));
    if (write_all(fd, (const uint8_t *)buf, (size_t)n) || fsync(fd)) {
        int e = errno;
        close(fd);
        unlink(p->meta_partial);
        return fail(err, err_size, "cannot write %s: %s", p->meta_partial, strerror(e));
    }
    close(fd);
    if (rename(p->meta_partial, p->meta) || fsync_dir(p->dir))
        return fail(err, err_size, "cannot publish %s: %s", p->meta, strerror(errno));
    return 0;
}

/* Hashes a whole file, which must have exactly `size` bytes. */
static int hash_file(const char *path, uint64_t size, uint8_t *buf, uint64_t *hash) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
        close(fd);
        return -1;
    }
    wg_xxh64_state h;
    wg_xxh64_init(&h, 0);
    uint64_t total = 0;
    for (;;) {
        ssize_t r = read_full(fd, buf, COPY_CHUNK);
        if (r < 0) {
            close(fd);
            return -1;
        }
        if (r == 0) break;
        wg_xxh64_update(&h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    close(fd);
    if (total != size) return -1;
    *hash = wg_xxh64_digest(&h);
    return 0;
}

static int same_source(const struct stat *a, const struct stat *b) {
    return a->st_size == b->st_size && mtime_ns(a) == mtime_ns(b);
}

static int entry_valid(const entry_paths *p, const struct stat *src, uint8_t *buf) {
    entry_meta m;
    if (read_meta(p->meta, &m)) return 0;
    if (m.size != (uint64_t)src->st_size || m.mtime_ns != mtime_ns(src)) return 0;
    uint64_t h;
    if (hash_file(p->data, m.size, buf, &h)) return 0;
    return h == m.hash;
}

/* Copies the source into `partial`, hashing what is written; fsync'ed before returning. The
 * source must still match `src` (size, mtime) after the copy, or the copy is refused. */
static int copy_into_partial(const char *source_abs, const struct stat *src, const char *partial,
                             const char *dir, const wg_model_cache_options *opts, uint8_t *buf, uint64_t *hash,
                             char *err, size_t err_size) {
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
        if (avail < (uint64_t)src->st_size)
            return fail(err, err_size, "not enough space in cache folder %s: %" PRIu64 " bytes free, model needs %" PRIu64,
                        dir, avail, (uint64_t)src->st_size);
    }
    int in = open(source_abs, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* never waits on a FIFO swapped in */
    if (in < 0) return fail(err, err_size, "cannot open model %s: %s", source_abs, strerror(errno));
    int out = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = errno;
        close(in);
        return fail(err, err_size, "cannot create %s: %s", partial, strerror(e));
    }
    wg_xxh64_state h;
    wg_xxh64_init(&h, 0);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read_full(in, buf, COPY_CHUNK);
        if (r < 0) {
            rc = fail(err, err_size, "cannot read model %s: %s", source_abs, strerror(errno));
            break;
        }
        if (r == 0) break;
        if (write_all(out, buf, (size_t)r)) {
            rc = fail(err, err_size, "cannot write %s: %s", partial, strerror(errno));
            break;
        }
        wg_xxh64_update(&h, buf, (size_t)r);
        total += (uint64_t)r;
        if (opts->copy_chunk_delay_us) sleep_us(opts->copy_chunk_delay_us);
    }
    struct stat now;
    if (rc == 0 && (fstat(in, &now) || !same_source(src, &now) || total != (uint64_t)src->st_size))
        rc = fail(err, err_size, "model %s changed while it was being cached", source_abs);
    if (rc == 0 && fsync(out)) rc = fail(err, err_size, "cannot sync %s: %s", partial, strerror(errno));
    if (close(out) && rc == 0) rc = fail(err, err_size, "cannot write %s: %s", partial, strerror(errno));
    close(in);
    if (rc == 0) *hash = wg_xxh64_digest(&h);
    return rc;
}

static int build_entry(const entry_paths *p, const char *source_abs, const struct stat *src,
                       const wg_model_cache_options *opts, uint8_t *buf, wg_model_cache_action *action, char *err,
                       size_t err_size) {
    /* Never leave a sidecar that could describe the file about to be replaced. */
    if (unlink(p->meta) && errno != ENOENT)
        return fail(err, err_size, "cannot remove stale %s: %s", p->meta, strerror(errno));
    if (unlink(p->data) && errno != ENOENT)
        return fail(err, err_size, "cannot remove stale %s: %s", p->data, strerror(errno));
    unlink(p->partial);

    entry_meta m = {.size = (uint64_t)src->st_size, .mtime_ns = mtime_ns(src)};
    struct stat dir_st;
    if (stat(p->dir, &dir_st)) return fail(err, err_size, "cannot stat %s: %s", p->dir, strerror(errno));
    int linked = 0;
    if (opts->allow_hardlink && dir_st.st_dev == src->st_dev && link(source_abs, p->partial) == 0) {
        /* Same filesystem: the link costs nothing; hash it for the later content checks. */
        struct stat now;
        if (hash_file(p->partial, m.size, buf, &m.hash) || stat(source_abs, &now) || !same_source(src, &now)) {
            unlink(p->partial);
            return fail(err, err_size, "model %s changed while it was being cached", source_abs);
        }
        linked = 1;
    } else {
        if (copy_into_partial(source_abs, src, p->partial, p->dir, opts, buf, &m.hash, err, err_size)) {
            unlink(p->partial);
            return -1;
        }
    }
    if (rename(p->partial, p->data) || fsync_dir(p->dir)) {
        int e = errno;
        unlink(p->partial);
        return fail(err, err_size, "cannot publish %s: %s", p->data, strerror(e));
    }
    if (write_meta(p, &m, source_abs, err, err_size)) return -1;
    if (action) *action = linked ? WG_MODEL_CACHE_LINKED : WG_MODEL_CACHE_COPIED;
    return 0;
}

static int lock_entry(const char *lock_path, char *err, size_t err_size) {
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && (errno == EACCES || errno == EROFS)) fd = open(lock_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, err_size, "cannot open lock %s: %s", lock_path, strerror(errno));
    while (flock(fd, LOCK_EX) == -1) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        return fail(err, err_size, "cannot lock %s: %s", lock_path, strerror(e));
    }
    return fd;
}

int wg_model_cache_resolve_opts(const char *cache_dir, const char *model_path, const wg_model_cache_options *opts,
                                wg_model_cache_action *action, char *out_path, size_t out_size, char *err,
                                size_t err_size) {
    if (!cache_dir || !*cache_dir || !model_path || !*model_path || !out_path || !out_size)
        return fail(err, err_size, "model cache: empty cache folder or model path");
    wg_model_cache_options defaults;
    if (!opts) {
        wg_model_cache_default_options(&defaults);
        opts = &defaults;
    }
    char source_abs[PATH_MAX], dir_abs[PATH_MAX];
    if (!realpath(model_path, source_abs))
        return fail(err, err_size, "cannot open model %s: %s", model_path, strerror(errno));
    struct stat src;
    if (stat(source_abs, &src)) return fail(err, err_size, "cannot stat model %s: %s", model_path, strerror(errno));
    if (!S_ISREG(src.st_mode)) return fail(err, err_size, "model %s is not a regular file", model_path);
    if (mkdir(cache_dir, 0755) && errno != EEXIST)
        return fail(err, err_size, "cannot create cache folder %s: %s", cache_dir, strerror(errno));
    if (!realpath(cache_dir, dir_abs))
        return fail(err, err_size, "cannot open cache folder %s: %s", cache_dir, strerror(errno));
    struct stat dst;
    if (stat(dir_abs, &dst) || !S_ISDIR(dst.st_mode))
        return fail(err, err_size, "cache folder %s is not a directory", cache_dir);

    entry_paths p;
    if (make_paths(dir_abs, source_abs, &p, err, err_size)) return -1;
    if (strlen(p.data) >= out_size) return fail(err, err_size, "output buffer too small for %s", p.data);
    uint8_t *buf = malloc(COPY_CHUNK);
    if (!buf) return fail(err, err_size, "out of memory");
    int lock_fd = lock_entry(p.lock, err, err_size);
    if (lock_fd < 0) {
        free(buf);
        return -1;
    }
    int rc = 0;
    if (entry_valid(&p, &src, buf)) {
        if (action) *action = WG_MODEL_CACHE_REUSED;
    } else {
        rc = build_entry(&p, source_abs, &src, opts, buf, action, err, err_size);
    }
    close(lock_fd); /* releases the flock */
    free(buf);
    if (rc == 0) snprintf(out_path, out_size, "%s", p.data);
    return rc;
}

int wg_model_cache_resolve(const char *cache_dir, const char *model_path, char *out_path, size_t out_size,
                           char *err, size_t err_size) {
    return wg_model_cache_resolve_opts(cache_dir, model_path, NULL, NULL, out_path, out_size, err, err_size);
}
