/* GGUF v2/v3 reader (mmap, bounds-checked) and streaming writer.
 *
 * Reader: every length, count and offset is checked against the file size with
 * overflow-safe arithmetic before use; a malformed file yields a one-line error
 * naming the problem. A gguf_file is immutable after open and may be read from
 * several threads at once. Strings inside the file are NOT NUL-terminated unless
 * stated: they come as (pointer, length) pairs pointing into the mapping.
 */
#ifndef WGLLM_GGUF_H
#define WGLLM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

typedef enum gguf_vtype {
    GGUF_VT_UINT8 = 0,
    GGUF_VT_INT8 = 1,
    GGUF_VT_UINT16 = 2,
    GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4,
    GGUF_VT_INT32 = 5,
    GGUF_VT_FLOAT32 = 6,
    GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8,
    GGUF_VT_ARRAY = 9,
    GGUF_VT_UINT64 = 10,
    GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
    GGUF_VT_COUNT_
} gguf_vtype;

typedef struct gguf_tensor_info {
    const char *name;       /* NUL-terminated copy owned by the gguf_file */
    uint32_t type;          /* wg_type / ggml_type id */
    uint32_t n_dims;        /* 1..GGUF_MAX_DIMS */
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint64_t offset;        /* relative to the start of the data section */
    uint64_t nbytes;        /* exact size of the tensor data */
    const void *data;       /* points into the mapping */
} gguf_tensor_info;

typedef struct gguf_file gguf_file;

/* Opens and validates a file (mmap, read-only). On failure returns NULL and
 * writes a one-line message to err (if err_size > 0). Caller frees with gguf_close. */
gguf_file *gguf_open(const char *path, char *err, size_t err_size);

/* Opens a file into private memory instead of mapping it: the metadata is read now,
 * each tensor's data by gguf_tensor_load. Whatever happens to the file afterwards
 * (truncated, rewritten in place, removed) never reaches the gguf_file; with a mapping,
 * a truncated file raises SIGBUS at the next touch of a page past its new end. Costs
 * memory for whatever is loaded and kept. The file stays open until gguf_detach. */
gguf_file *gguf_open_private(const char *path, char *err, size_t err_size);
bool gguf_is_private(const gguf_file *f);

/* Makes ti's data readable at ti->data: a private file reads it (if it is not already in
 * memory); a mapped file or a caller buffer has it already. False with a message when the
 * file no longer holds it (truncated since open) or was detached. Loading and unloading
 * change the gguf_file: one thread does them, before its data is shared. */
bool gguf_tensor_load(gguf_file *f, const gguf_tensor_info *ti, char *err, size_t err_size);
/* Gives back the memory of ti's data (the whole pages inside it) once it was copied
 * elsewhere (to a GPU). A private file's tensor must be loaded again before it is read. */
void gguf_tensor_unload(gguf_file *f, const gguf_tensor_info *ti);
/* A private file: closes it and makes the copy read-only; no tensor can be loaded
 * afterwards. False with a message if the file's size or mtime changed since open (it
 * was rewritten while loading: what was read may mix two versions). True otherwise. */
bool gguf_detach(gguf_file *f, char *err, size_t err_size);

/* As gguf_open, over a caller-owned buffer that must outlive the gguf_file (fuzzing, tests). */
gguf_file *gguf_open_memory(const void *data, size_t size, char *err, size_t err_size);

void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* absolute file offset of the data section */
size_t gguf_file_size(const gguf_file *f);
const void *gguf_file_base(const gguf_file *f);

/* ---- metadata ---- */
int64_t gguf_n_kv(const gguf_file *f);
int64_t gguf_find_key(const gguf_file *f, const char *key); /* -1 if absent */
const char *gguf_kv_key(const gguf_file *f, int64_t i);     /* NUL-terminated, owned by f */
gguf_vtype gguf_kv_type(const gguf_file *f, int64_t i);

/* Typed scalar getters by key. Return false if the key is absent or the value
 * cannot be represented (e.g. negative into unsigned, wrong kind). Integer getters
 * accept any integer vtype whose value fits; float getters accept f32/f64/ints. */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, const char **s, size_t *len);

/* Arrays (by kv index). gguf_arr_n returns -1 if kv i is not an array. */
int64_t gguf_arr_n(const gguf_file *f, int64_t i);
gguf_vtype gguf_arr_type(const gguf_file *f, int64_t i);
/* Element accessors; false if out of range or not convertible. */
bool gguf_arr_get_i64(const gguf_file *f, int64_t i, int64_t idx, int64_t *out);
bool gguf_arr_get_f64(const gguf_file *f, int64_t i, int64_t idx, double *out);
bool gguf_arr_get_str(const gguf_file *f, int64_t i, int64_t idx, const char **s, size_t *len);

/* Scalar value of kv i rendered as text for `wgllm info` (arrays: type, length and
 * the first few elements). Writes at most buf_size bytes, always NUL-terminated. */
void gguf_kv_format(const gguf_file *f, int64_t i, char *buf, size_t buf_size);

const char *gguf_vtype_name(gguf_vtype t);

/* A file's string as it may appear inside a one-line message: printable ASCII kept, any
 * other byte (a newline, an escape, UTF-8) shown as '?', at most 40 characters then "...".
 * Returns buf, always NUL-terminated (buf_size > 0). */
const char *gguf_str_shown(const char *s, size_t len, char *buf, size_t buf_size);

/* ---- tensors ---- */
int64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor_info *gguf_tensor(const gguf_file *f, int64_t i);
const gguf_tensor_info *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */

/* ---- writer ----
 * Usage: create; set metadata; add every tensor's info; gguf_writer_begin(path)
 * writes the header; then gguf_writer_write_tensor for each tensor in the order
 * added (data size must equal the info's size); gguf_writer_finish pads, flushes
 * and atomically renames a temporary file onto path. Any failure is sticky:
 * later calls return false and gguf_writer_error tells why. Keys set twice keep
 * the last value. Strings are copied. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_create(void);
void gguf_writer_free(gguf_writer *w); /* also removes an unfinished temp file */
const char *gguf_writer_error(const gguf_writer *w);

bool gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
bool gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
bool gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
bool gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
bool gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
bool gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Numeric array of n elements of elem_type (little-endian host data). */
bool gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data, size_t n);
bool gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, size_t n);
/* Copies metadata entry i of f (any value type, exact bytes) under the same key. */
bool gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, int64_t i);

/* Adds a tensor info; ne has n_dims entries, ne[0] contiguous. Checks the
 * type is known and ne[0] is a multiple of its block size. */
bool gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne);
bool gguf_writer_begin(gguf_writer *w, const char *path);
bool gguf_writer_write_tensor(gguf_writer *w, const void *data, size_t nbytes);
bool gguf_writer_finish(gguf_writer *w);

#endif
