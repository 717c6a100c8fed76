/* Reader of Hugging Face safetensors files and checkpoints.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON mapping each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
 * to the end of the header; "__metadata__" is ignored), then the data. Files are
 * mapped read-only; every number of the header is checked (header inside the file,
 * offsets inside the data, size = prod(shape) * element size without overflow,
 * unique names) before a tensor is handed out. A checkpoint is a folder with one
 * model.safetensors or shards listed by model.safetensors.index.json.
 */
#ifndef WGLLM_CONVERT_SAFETENSORS_H
#define WGLLM_CONVERT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WG_ST_MAX_DIMS 8
/* The format's own limit on the JSON header (100 MB). */
#define WG_ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct wg_st_tensor {
    const char *name;  /* NUL-terminated, owned by the file */
    char dtype[12];    /* as written: "F32", "BF16", "I64", ... */
    uint32_t type;     /* WG_TYPE_F32/F16/BF16, or UINT32_MAX for any other dtype */
    int n_dims;        /* 0..WG_ST_MAX_DIMS */
    int64_t shape[WG_ST_MAX_DIMS]; /* outermost first (row-major), as in the file */
    uint64_t n_elements;
    uint64_t nbytes;
    const void *data;  /* inside the mapping; not necessarily aligned */
} wg_st_tensor;

typedef struct wg_st_file wg_st_file;

/* Maps and validates a file. NULL with a one-line message on failure. */
wg_st_file *wg_st_open(const char *path, char *err, size_t err_size);
/* Same over a caller-owned buffer that must outlive the result (tests, fuzzing). */
wg_st_file *wg_st_open_memory(const void *data, size_t size, char *err, size_t err_size);
void wg_st_close(wg_st_file *f);

int64_t wg_st_n_tensors(const wg_st_file *f);
const wg_st_tensor *wg_st_tensor_at(const wg_st_file *f, int64_t i); /* NULL if out of range */
const wg_st_tensor *wg_st_find(const wg_st_file *f, const char *name);

/* True for the dtypes a converter can read (F32, F16, BF16); else writes why to err. */
bool wg_st_tensor_readable(const wg_st_tensor *t, char *err, size_t err_size);

/* Copies at most 80 bytes of s into out with control characters as '?', so that names
 * from a file keep error messages on one line. */
void wg_st_printable(const char *s, char *out, size_t out_size);

/* Element i of a readable tensor as f32 (unaligned-safe). */
float wg_st_get_f32(const wg_st_tensor *t, uint64_t i);

/* ---- checkpoints ---- */
typedef struct wg_st_checkpoint wg_st_checkpoint;

/* Opens dir/model.safetensors.index.json (weight_map: tensor -> shard file in dir)
 * or, without it, dir/model.safetensors. Every tensor the index names must be in its
 * shard; a name may appear only once over all shards. */
wg_st_checkpoint *wg_st_checkpoint_open(const char *dir, char *err, size_t err_size);
void wg_st_checkpoint_free(wg_st_checkpoint *c);

int wg_st_checkpoint_n_files(const wg_st_checkpoint *c);
const wg_st_file *wg_st_checkpoint_file(const wg_st_checkpoint *c, int i); /* NULL if out of range */
/* NULL if no shard holds the tensor. */
const wg_st_tensor *wg_st_checkpoint_find(const wg_st_checkpoint *c, const char *name);

#endif
