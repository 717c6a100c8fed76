/* Private layout of a parsed GGUF file, shared by the reader and the
 * formatting code, plus small value-type helpers used by reader and writer. */
#ifndef WGLLM_GGUF_INTERNAL_H
#define WGLLM_GGUF_INTERNAL_H

#include <sys/stat.h>

#include "gguf/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF code reads and writes little-endian values in host order"
#endif

/* Largest general.alignment accepted on both sides: enough for any page size,
 * small enough that padding can never be a denial of service. */
#define GGUF_MAX_ALIGNMENT (1u << 24)

typedef struct gguf_kv {
    const char *key;         /* NUL-terminated copy (keys never contain NUL) */
    uint64_t key_len;
    gguf_vtype type;
    gguf_vtype arr_type;     /* element type when type == GGUF_VT_ARRAY */
    uint64_t n;              /* array: element count; string: byte length */
    const uint8_t *val;      /* scalar: its bytes; string: first byte; array: first element */
    const uint64_t *str_off; /* string arrays: file offset of each element's length prefix */
} gguf_kv;

/* Open-addressing hash table from a name to its index (kv or tensor). */
typedef struct gguf_name_index {
    int64_t *slots; /* -1 = empty */
    uint64_t mask;  /* capacity - 1, capacity a power of two */
} gguf_name_index;

struct gguf_file {
    const uint8_t *base;
    size_t size;
    void *mapping; /* non-NULL when gguf_open mapped the file (or gguf_open_private
                    * allocated its private copy); size bytes long */
    int fd;        /* gguf_open_private: the file, until gguf_detach; -1 otherwise */
    bool *loaded;  /* gguf_open_private: per tensor, its data was read into place */
    bool is_private;
    uint64_t opened_size;    /* gguf_open_private: the file's size and mtime at open, */
    int64_t opened_mtime_ns; /* to tell that it was rewritten while loading */

    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;

    int64_t n_kv;
    gguf_kv *kv;
    int64_t n_tensors;
    gguf_tensor_info *tensors;

    char *names; /* arena holding every key and tensor name */
    gguf_name_index key_index;
    gguf_name_index tensor_index;
};

/* Parses data[0..size) (gguf_open_memory). *seen (may be NULL) is set, on success and
 * on failure alike, to the end of the furthest byte the parser looked at: when only
 * data[0..n) holds the real bytes yet (the rest not read), the outcome is that of the
 * whole buffer if *seen <= n. */
gguf_file *gguf_parse(const void *data, size_t size, size_t *seen, char *err, size_t err_size);

/* Opens path for reading if it is a regular file of at least a GGUF header's size whose size
 * fits in size_t (a FIFO or device is refused without blocking): the descriptor and its fstat
 * in *st, or -1 with err set. */
int gguf_open_regular(const char *path, struct stat *st, char *err, size_t err_size);

/* Grows *arr (of elem-byte items) so that index `need` fits, doubling the
 * capacity; false when out of memory (the array is left as it was). */
bool gguf_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* Data bytes of a tensor whose ne[0] is a multiple of block_size (unused dims
 * are 1); false if the size overflows int64. */
bool gguf_tensor_nbytes(int64_t block_size, int64_t block_bytes, const int64_t ne[GGUF_MAX_DIMS], uint64_t *nbytes);

/* Bytes of one value of a fixed-size type; 0 for strings, arrays and unknown ids. */
size_t gguf_vtype_size(gguf_vtype t);

/* Writes s[0..n) as a double-quoted, escaped string of at most max_chars source
 * bytes (then `...`), NUL-terminated within out_size. Returns the length written. */
size_t gguf_escape(const char *s, size_t n, size_t max_chars, char *out, size_t out_size);

#endif
