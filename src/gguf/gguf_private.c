/* GGUF files read into private memory instead of mapped.
 *
 * A shared or private file mapping reads its pages from the file as they are touched:
 * once the file is truncated (`cp new.gguf served.gguf` truncates it first), a touch of
 * a page past the new end raises SIGBUS, and one rewritten in place shows the new bytes.
 * Here the file's bytes are copied into anonymous memory with pread(), so nothing that
 * happens to the file later reaches them. The copy has the file's layout, so the parser
 * and every pointer it hands out work unchanged: the metadata is read at open (a growing
 * prefix until the parse no longer looks past what was read), tensor data when the
 * loader asks for it, so a backend that uploads each weight (a GPU) can give its pages
 * back right away and never holds the whole file. */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIRST_READ ((size_t)1 << 20) /* metadata prefix read first; doubled while the parse needs more */

static void set_err(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_size, const char *fmt, ...) {
    if (!err || err_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* Reads bytes [from, to) of fd into buf at the same offsets. False (errno set, 0 for a
 * short file) when they cannot all be read. */
static bool read_range(int fd, uint8_t *buf, size_t from, size_t to) {
    while (from < to) {
        ssize_t r = pread(fd, buf + from, to - from, (off_t)from);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = 0;
            return false;
        }
        from += (size_t)r;
    }
    return true;
}

static void read_failure(const char *path, char *err, size_t err_size) {
    if (errno)
        set_err(err, err_size, "cannot read '%s': %s", path, strerror(errno));
    else
        set_err(err, err_size, "cannot read '%s': the file became shorter while it was being read", path);
}

gguf_file *gguf_open_private(const char *path, char *err, size_t err_size) {
    struct stat st;
    int fd = gguf_open_regular(path, &st, err, err_size);
    if (fd < 0) return NULL;
    const size_t size = (size_t)st.st_size;
    /* Reserved, not committed: pages cost memory only once read into. */
    uint8_t *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (buf == MAP_FAILED) {
        set_err(err, err_size, "cannot reserve %zu bytes for '%s': %s", size, path, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t have = 0, want = size < FIRST_READ ? size : FIRST_READ;
    gguf_file *f = NULL;
    for (;;) {
        if (!read_range(fd, buf, have, want)) {
            read_failure(path, err, err_size);
            break;
        }
        have = want;
        size_t seen = 0;
        f = gguf_parse(buf, size, &seen, err, err_size);
        if (seen <= have) break; /* the outcome (file or error) rests on real bytes only */
        gguf_close(f);           /* looked at unread (zero) bytes: read more and parse again */
        f = NULL;
        want = have > size / 2 ? size : have * 2;
        if (want < seen) want = seen;
    }
    if (!f) {
        munmap(buf, size);
        close(fd);
        return NULL;
    }
    f->loaded = calloc((size_t)f->n_tensors + 1, sizeof *f->loaded);
    if (!f->loaded) {
        set_err(err, err_size, "out of memory");
        gguf_close(f);
        munmap(buf, size);
        close(fd);
        return NULL;
    }
    f->mapping = buf;
    f->fd = fd;
    f->is_private = true;
    f->opened_size = (uint64_t)st.st_size;
    f->opened_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return f;
}

bool gguf_is_private(const gguf_file *f) { return f && f->is_private; }

static int64_t tensor_index_of(const gguf_file *f, const gguf_tensor_info *ti) {
    if (!ti || ti < f->tensors || ti >= f->tensors + f->n_tensors) return -1;
    return ti - f->tensors;
}

bool gguf_tensor_load(gguf_file *f, const gguf_tensor_info *ti, char *err, size_t err_size) {
    if (!f->is_private) return true; /* mapped or caller memory: the data is there */
    int64_t i = tensor_index_of(f, ti);
    if (i < 0) {
        set_err(err, err_size, "not a tensor of this file");
        return false;
    }
    if (f->loaded[i]) return true;
    if (f->fd < 0) {
        set_err(err, err_size, "tensor '%s': the file was closed after loading", ti->name);
        return false;
    }
    size_t from = (size_t)(f->data_offset + ti->offset); /* checked against the size at open */
    if (!read_range(f->fd, (uint8_t *)f->mapping, from, from + (size_t)ti->nbytes)) {
        int e = errno;
        set_err(err, err_size, "tensor '%s': %s", ti->name,
                e ? strerror(e) : "the file became shorter while it was being loaded (rewritten in place?)");
        return false;
    }
    f->loaded[i] = true;
    return true;
}

void gguf_tensor_unload(gguf_file *f, const gguf_tensor_info *ti) {
    if (!f->mapping) return; /* caller memory is the caller's */
#ifdef __wasi__
    return; /* WASI cannot give pages back: the bytes stay, still loaded */
#endif
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t begin = ((uintptr_t)ti->data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)ti->data + ti->nbytes) & ~((uintptr_t)page - 1);
    /* Mapped pages are read again from the file if touched; private ones come back as zeros,
     * so the tensor is marked for reading again. */
    if (end > begin) madvise((void *)begin, end - begin, MADV_DONTNEED);
    int64_t i = tensor_index_of(f, ti);
    if (f->is_private && i >= 0) f->loaded[i] = false;
}

bool gguf_detach(gguf_file *f, char *err, size_t err_size) {
    if (!f->is_private || f->fd < 0) return true;
    struct stat st;
    bool same = fstat(f->fd, &st) == 0 && (uint64_t)st.st_size == f->opened_size &&
                (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec == f->opened_mtime_ns;
    close(f->fd);
    f->fd = -1;
#ifndef __wasi__ /* WASI has no page protection */
    mprotect(f->mapping, f->size, PROT_READ); /* the model's bytes, read-only from now on */
#endif
    if (!same) set_err(err, err_size, "the file changed while it was being loaded (rewritten in place?): load it again");
    return same;
}
