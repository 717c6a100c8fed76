/* The seam between model code and compute backends (CPU now, WebGPU next).
 *
 * Model code only sees wg_tensor handles and calls the ops below; it never reads
 * backend memory directly (read/write go through the backend). Activations are
 * f32 matrices stored row by row: a tensor of shape [ne0, ne1] holds ne1 rows of
 * ne0 floats (one row per token). Weights keep their GGUF block type; a weight of
 * shape [ne0, ne1] has ne1 output rows of ne0 inputs, as in GGUF.
 *
 * A backend may execute ops lazily (a GPU records them) as long as results are
 * visible to `read`. A backend instance is used by one thread at a time.
 */
#ifndef WGLLM_BACKEND_H
#define WGLLM_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WG_SLOT_IDS 64 /* ids of a device id slot (argmax_to_slot): sequences of a pipelined step */

typedef struct wg_tensor {
    uint32_t type; /* wg_type */
    int64_t ne0;   /* row length */
    int64_t ne1;   /* number of rows */
    void *impl;    /* backend-private storage */
} wg_tensor;

typedef struct wg_backend wg_backend;
struct wg_layer_desc;
struct wg_layer_step;
struct wg_layer_acts;

/* Rotary position embedding of one model (the rope op and the layers of backend/layer.h). */
typedef struct wg_rope {
    int dims;             /* rotated values at the start of each head (even, <= head_dim) */
    bool neox;            /* false: adjacent pairs (x[2i], x[2i+1]) (llama's GGUF layout);
                             true: halves (x[i], x[i + dims/2]) (NeoX style: qwen2, qwen3, phi3) */
    float base, scale;    /* pair i at position p turns by p * scale * base^(-2i/dims) / factors[i] */
    const float *factors; /* NULL (all 1) or dims/2 host floats, valid and unchanged while the backend lives */
} wg_rope;

typedef struct wg_backend_ops {
    const char *name;
    /* True when weight tensors keep pointing at the caller's bytes (CPU); false when
     * weight_create copies them (to a GPU), so the caller may drop its pages. */
    bool weights_reference_host;
    /* True when buffers and KV caches live in host memory (CPU): contexts check their size
     * against the memory the process can still take before creating them, and the backend
     * commits their pages at creation, so a cache that does not fit fails at start. */
    bool host_memory;
    /* Tokens per forward step that use the backend well (a GPU wants big batches, to
     * read each weight tile once for many tokens); contexts size their buffers by it. */
    int batch_hint;
    /* True when the backend builds or tunes kernels the first time a shape of step runs (a
     * GPU compiles pipelines and measures tile choices then): wgllm_warm_up runs each shape
     * once, so that this happens before a server's first requests and not inside them. */
    bool kernels_at_first_use;
    void (*destroy)(wg_backend *b);

    /* Weight of any supported type; `data` holds ne1 rows of wg_type_row_bytes(type, ne0)
     * and must stay valid until the tensor is freed (backends may reference it, e.g. mmap). */
    wg_tensor *(*weight_create)(wg_backend *b, uint32_t type, int64_t ne0, int64_t ne1, const void *data,
                                char *err, size_t err_size);
    /* Optional (NULL: !weights_reference_host for every weight): true when this weight keeps
     * no pointer to the caller's bytes (the backend made its own copy, e.g. repacked), so the
     * caller may drop their pages. */
    bool (*weight_copied)(const wg_backend *b, const wg_tensor *t);
    /* Zero-initialised f32 activation matrix. */
    wg_tensor *(*buffer_create)(wg_backend *b, int64_t ne0, int64_t ne1, char *err, size_t err_size);
    /* Optional (NULL: buffer_create): a zero-initialised f32 matrix for results (the logits)
     * that only matmul writes (as out) and only read_rows, copy_rows and the argmax ops read
     * (copy_rows may also write it). The backend may keep its rows in several parts, so it
     * may be larger than a device lets one buffer be bound. */
    wg_tensor *(*output_create)(wg_backend *b, int64_t ne0, int64_t ne1, char *err, size_t err_size);
    /* Optional (NULL: buffer_create): a KV cache of ne1 rows of ne0 values. A backend may
     * store it in less precision (f16 on GPUs that have it); reads and writes of its rows
     * still take f32. Caches of one `group` (the model passes 2 * layer for K, 2 * layer + 1
     * for V) may be kept side by side, so that a backend's layer op reaches the caches of many
     * sequences at once. */
    wg_tensor *(*kv_cache_create)(wg_backend *b, int64_t ne0, int64_t ne1, int group, char *err, size_t err_size);
    void (*tensor_free)(wg_backend *b, wg_tensor *t);
    /* Copies rows [row0, row0+n) between host memory and an f32 tensor. */
    void (*write_rows)(wg_backend *b, wg_tensor *t, int64_t row0, int64_t n, const float *src);
    void (*read_rows)(wg_backend *b, const wg_tensor *t, int64_t row0, int64_t n, float *dst);

    /* ---- ops on the first n rows (tokens) of their operands ---- */
    /* out[i] = dequantized row ids[i] of table. */
    void (*get_rows)(wg_backend *b, const wg_tensor *table, const int32_t *ids, int n, wg_tensor *out);
    /* dst[dst_row0 + i] = src[src_row0 + i] for i < n. */
    void (*copy_rows)(wg_backend *b, const wg_tensor *src, int64_t src_row0, int n, wg_tensor *dst,
                      int64_t dst_row0);
    /* RMS norm by groups of w->ne0 consecutive values of each row (w->ne0 divides x's row
     * length): group g of row i is x[i][g] / sqrt(mean(x[i][g]^2) + eps) * w. w->ne0 == x's
     * row length: the whole row; == head_dim: each head on its own (q/k norm). out may be x. */
    void (*rms_norm)(wg_backend *b, const wg_tensor *x, const wg_tensor *w, float eps, int n, wg_tensor *out);
    /* out[i][r] = dot(W row r, x[i])   (x row length = W->ne0, out row length = W->ne1) */
    void (*matmul)(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out);
    /* The next three work on rows row0 .. row0+n-1 of their activations (one sequence's
     * tokens inside a batch of several sequences), the i-th of them at position pos0 + i. */
    /* Rotates the first rope->dims values of each head of row row0 + i as wg_rope says, at
     * position pos0 + i. */
    void (*rope)(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope, int pos0,
                 int row0);
    /* Stores k[row0 + i], v[row0 + i] at cache rows pos0 + i. */
    void (*kv_store)(wg_backend *b, wg_tensor *k_cache, wg_tensor *v_cache, const wg_tensor *k,
                     const wg_tensor *v, int pos0, int n, int row0);
    /* Causal grouped-query attention: q row row0 + i (position p = pos0 + i) attends to cache
     * rows 0..p (window 0) or max(0, p - window + 1)..p (window > 0: sliding window), into out
     * row row0 + i; query head h uses kv head h / (n_head / n_head_kv). */
    void (*attention)(wg_backend *b, const wg_tensor *q, const wg_tensor *k_cache, const wg_tensor *v_cache,
                      int pos0, int n, int n_head, int n_head_kv, int head_dim, int window, wg_tensor *out,
                      int row0);
    /* out[i] = silu(gate[i]) * up[i]; out may be gate. */
    void (*swiglu)(wg_backend *b, const wg_tensor *gate, const wg_tensor *up, int n, wg_tensor *out);
    /* x[i] += y[i]; y of one row (y->ne1 == 1, e.g. a bias made by weight_create, f32):
     * x[i] += y[0] for each of the n rows. */
    void (*add)(wg_backend *b, wg_tensor *x, const wg_tensor *y, int n);
    /* Optional (may be NULL): index of the largest value of row `row` of an f32 tensor,
     * the first on ties; -1 on failure. Lets greedy decoding read back one integer
     * instead of a row of logits. */
    int32_t (*argmax)(wg_backend *b, const wg_tensor *x, int64_t row);
    /* Optional (may be NULL, or false having recorded nothing when it cannot, e.g. too
     * many rows): out[i] = argmax of row 0 of x[i], as argmax gives it, for several tensors
     * read back together (one round trip for a batch of sequences); -1 on failure. */
    bool (*argmax_rows)(wg_backend *b, const wg_tensor *const *x, int n, int32_t *out);
    /* Optional (all four or none): greedy decoding without a CPU round trip per token.
     * A device id slot (0..3) holds up to WG_SLOT_IDS ids, one per sequence of a step.
     * argmax_to_slot records the argmax of row `row` of x into id `pos` of slot `slot`;
     * slot_read_start submits and starts reading the slot's first n ids back;
     * get_rows_from_slot records the embedding rows of those n ids into out rows 0..n-1
     * (false, recording nothing, when this table cannot: the caller then reads the ids
     * and uses get_rows); read_slot waits for the n ids (false on failure, or when an op
     * failed since). So step t+1 can be queued before the tokens of step t reach the CPU. */
    void (*argmax_to_slot)(wg_backend *b, const wg_tensor *x, int64_t row, int slot, int pos);
    void (*slot_read_start)(wg_backend *b, int slot, int n);
    bool (*get_rows_from_slot)(wg_backend *b, const wg_tensor *table, int slot, int n, wg_tensor *out);
    bool (*read_slot)(wg_backend *b, int slot, int n, int32_t *ids);
    /* Waits until all recorded work is done. False if any op since the last call
     * failed; error() then says why. */
    bool (*synchronize)(wg_backend *b);
    const char *(*error)(const wg_backend *b);
    /* Optional (may be NULL): bytes of device memory this backend has allocated. */
    uint64_t (*device_memory)(const wg_backend *b);

    /* Optional (NULL: wg_layer_compose, which uses the ops above): one step of one layer
     * as backend/layer.h describes it, with what this backend fuses; the same results as
     * wg_layer_compose up to f32 rounding. Never called with an observer. */
    void (*layer)(wg_backend *b, const struct wg_layer_desc *d, const struct wg_layer_step *s,
                  const struct wg_layer_acts *a);
    /* True when `layer` never uses wg_layer_acts.up (it fuses the gate and up products):
     * that n_ff buffer is then made only for steps that run wg_layer_compose. */
    bool layer_without_up;
} wg_backend_ops;

struct wg_backend {
    const wg_backend_ops *ops;
    void *ctx;
};

/* ---- devices a backend can run on, described generically (`wgllm devices`) ---- */
#define WG_BACKEND_DEVICE_MAX_FEATURES 16
#define WG_BACKEND_DEVICE_MAX_LIMITS 16

typedef struct wg_backend_device_limit {
    const char *name; /* static string, the backend's own spelling (e.g. "maxBufferSize") */
    uint64_t value;
} wg_backend_device_limit;

/* Strings are "" when the backend does not know them. */
typedef struct wg_backend_device {
    char name[256];
    char api[32];  /* the native API under the backend: "vulkan", "metal", ... */
    char type[32]; /* "discrete-gpu", "integrated-gpu", "cpu", ... */
    char vendor[128];
    char architecture[128];
    char driver[256];
    uint32_t vendor_id, device_id;
    uint32_t subgroup_min_size, subgroup_max_size; /* 0: none or unknown */
    int n_features;
    const char *features[WG_BACKEND_DEVICE_MAX_FEATURES]; /* static strings, in a fixed order */
    int n_limits;
    wg_backend_device_limit limits[WG_BACKEND_DEVICE_MAX_LIMITS];
} wg_backend_device;

typedef struct wg_backend_device_list {
    char *library;  /* what provides the devices (a library path); owned by the list */
    char version[32];
    char *revision; /* NULL or the library's revision; owned by the list */
    const char *known_features; /* static: the features the backend looks for, for "none of ..." */
    int n_devices;
    wg_backend_device *devices; /* n_devices entries; index = the `device` a backend is created with */
} wg_backend_device_list;

#endif
