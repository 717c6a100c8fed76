/* Shared between the WebGPU backend's files (wgpu_backend.c: tensors, recording and
 * submission; wgpu_ops.c: the ops); not part of the backend seam.
 *
 * Recording model: ops are dispatched into one command encoder / compute pass that is
 * submitted by synchronize, read_rows, argmax, write_rows (to keep queue order) or when
 * the parameter slots run out. Each dispatch's parameters go to a 256-byte slot of a host
 * array that is written to the GPU with one queue write just before the submit and bound
 * with a dynamic offset, so bind groups do not depend on the parameters and are cached. */
#ifndef WGLLM_WGPU_INTERNAL_H
#define WGLLM_WGPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/layer.h"
#include "backend/webgpu/wgpu_device.h"
#include "backend/webgpu/wgpu_pipelines.h"

/* A buffer range as bound to a kernel. `id` names the buffer in the bind group cache
 * (unique for the backend's lifetime, unlike handles, which may be reused). */
typedef struct wgb_bind {
    WGPUBuffer buf;
    uint64_t id;
    uint64_t offset;
    uint64_t size;
} wgb_bind;

typedef struct wgb_pool wgb_pool;

/* Weights and outputs (output_create): rows [row0, row0 + rows) in one binding each.
 * Other activations: one part. */
typedef struct wgb_part {
    wgb_bind bind;
    int64_t row0, rows;
    wgb_pool *pool; /* weights only */
} wgb_part;

typedef struct wgb_kv_arena wgb_kv_arena;

typedef struct wgb_tensor {
    bool weight;
    bool half; /* an activation stored as f16 (the KV cache on devices with shader-f16) */
    size_t row_bytes;
    int n_parts;
    wgb_part *parts;
    wgb_kv_arena *arena; /* a KV cache: the arena holding it (wgpu_kv_cache.c), else NULL */
    int arena_slot;
} wgb_tensor;

/* KV caches of one group (the model passes one group per layer and K or V) of one size,
 * side by side in one buffer: an op over several sequences then binds all their caches
 * of a layer once. The buffer grows by doubling (the caches in it are copied over, their
 * bindings updated); the slots of freed caches are reused. */
struct wgb_kv_arena {
    wgb_kv_arena *next;
    int group;
    bool half;
    uint64_t slot_bytes; /* a multiple of the storage offset alignment */
    WGPUBuffer buf;
    uint64_t id;
    int cap, used;
    struct wg_tensor **slots; /* the cache in each slot, NULL when free */
};

typedef struct wgb_bg_entry {
    uint64_t key[2 + 3 * WGB_MAX_STORAGE];
    WGPUBindGroup bg;
} wgb_bg_entry;

/* Scratch buffers: operands aliasing an output (0, 1), attention partials, int8 x and
 * its block scales for the Q4_0 decode matvec (two pairs: see wgb_q8_tag). */
enum {
    WGB_SCRATCH_ALIAS0,
    WGB_SCRATCH_ALIAS1,
    WGB_SCRATCH_ATTN,
    WGB_SCRATCH_XQ,
    WGB_SCRATCH_XS,
    WGB_SCRATCH_GATE, /* matmul_swiglu without its fused kernel */
    WGB_SCRATCH_UP,
    WGB_SCRATCH_XQ_H, /* int8 copy of the FFN hidden state (matvec_q8_swiglu's output) */
    WGB_SCRATCH_XS_H,
    WGB_SCRATCH_COUNT
};

/* The int8 copies of activations in scratch: slot X (XQ/XS) holds what rms_norm, attention
 * or a quantize dispatch made; slot HIDDEN (XQ_H/XS_H) what the one-token gate/up kernel
 * made of its output while it read slot X. Each names the activation it was made from
 * (buffer id, 0: none), its row length and rows. */
enum { WGB_Q8_SLOT_X, WGB_Q8_SLOT_HIDDEN, WGB_Q8_SLOTS };
typedef struct wgb_q8_tag {
    uint64_t id;
    int64_t k;
    int n;
} wgb_q8_tag;

#define WGB_DECODE_MAX_BATCH 256 /* decode_attention: rows per call, in dispatches of WGB_DECODE_MAX_ROWS */
#define WGB_ID_SLOTS 4          /* device id slots for queued greedy steps */
#define WGB_SLOT_IDS WG_SLOT_IDS /* ids a slot holds: one per sequence of a batched step */
#define WGB_ARGMAX_IDS 64       /* argmax_rows' results, after the slots in argmax_out */
#define WGB_ARGMAX_BYTES (4 * (WGB_ID_SLOTS * WGB_SLOT_IDS + WGB_ARGMAX_IDS))
/* GPU time per kernel from timestamp queries (WGLLM_WEBGPU_PROFILE=1: every dispatch in
 * its own timed pass, so the sum includes ~µs of per-pass overhead; =pass: the normal
 * passes timed, i.e. the GPU's busy time). =host times the CPU side instead, with no
 * query: recording dispatches, finishing and submitting command buffers, and waiting for
 * read-backs. Reported on stderr when the backend closes. */
#define WGB_PROFILE_SLOTS 2048 /* 4096 queries: WebGPU's query set limit */
typedef struct wgb_profile {
    int mode; /* 0 off, 1 per dispatch, 2 per pass */
    WGPUQuerySet queries;
    WGPUBuffer resolve, readback;
    uint32_t n;                       /* timed scopes in the command buffer being recorded */
    int16_t kernel[WGB_PROFILE_SLOTS]; /* kernel of each scope, -1 for a whole pass */
    double ns[WGB_K_COUNT + 1];       /* last entry: whole passes */
    uint64_t calls[WGB_K_COUNT + 1];
    uint64_t submits;
    double period; /* ns per timestamp tick */
    bool host;     /* =host: the CPU-side times below */
    double host_ns[3];
    uint64_t host_calls[3];
    double host_t0; /* when the backend opened, ns */
} wgb_profile;
enum { WGB_HOST_RECORD, WGB_HOST_SUBMIT, WGB_HOST_WAIT };
double wgb_now_ns(void);

typedef struct wgb_ctx {
    wg_gpu *gpu;
    wg_device *dev;
    const wg_wgpu *api;
    wgb_pipelines pl;
    uint64_t split_binding_max;  /* weights and outputs are split into bindings of at most this */
    uint64_t binding_max;        /* the device's maxStorageBufferBindingSize */
    uint32_t offset_align;       /* minStorageBufferOffsetAlignment */
    uint32_t max_groups;         /* maxComputeWorkgroupsPerDimension */
    uint64_t next_id;
    uint64_t device_bytes; /* weights and activations allocated */

    wgb_pool *pools;
    uint64_t next_pool_bytes, pool_cap;
    wgb_kv_arena *kv_arenas;
    uint64_t uploaded; /* bytes written since the last wait (bounds staging memory) */

    /* recording */
    WGPUCommandEncoder enc;
    WGPUComputePassEncoder pass;
    WGPUBuffer params;
    uint64_t params_id;
    uint8_t *slots;
    uint32_t n_slots, cap_slots;
    /* Dispatches recorded since the last submit, and after how many to submit anyway
     * (WGLLM_WEBGPU_SUBMIT_EVERY; 0: only when needed or asked by flush). */
    uint32_t n_recorded, submit_every;

    /* bind group cache: entries plus an open-addressing index into them */
    wgb_bg_entry *bgs;
    size_t n_bgs, cap_bgs;
    int32_t *bg_index;
    size_t index_cap;

    /* read-back staging (MAP_READ), argmax result, scratch for aliased operands */
    WGPUBuffer readback;
    uint64_t readback_bytes;
    wgb_bind argmax_out;
    wgb_bind scratch[WGB_SCRATCH_COUNT];

    /* Q4_0 products on int8 x (WGLLM_WEBGPU_Q4_INT8=0: the f32 kernels instead). The
     * int8 x lives in scratch, tagged in q8[] with the activation it was made from: every
     * dispatch writing that activation and every host write to it clear the tag
     * (wgb_q8_forget), so matmuls on the same x (q, k, v; gate, up) quantize it once. */
    bool q4_int8;
    bool kv_f16; /* KV caches in f16 (shader-f16; WGLLM_WEBGPU_KV_F16=0: f32) */
    /* attention of this many tokens or more of one sequence through attention_flash.wgsl
     * (WGLLM_WEBGPU_FLASH_ATTN; 0: never) */
    uint32_t flash_min_tokens;
    wgb_q8_tag q8[WGB_Q8_SLOTS];

    /* rope's frequencies for (rope_base, rope_dims, rope_factors); rope_dims 0: none yet */
    float rope_freqs[WGB_ROPE_MAX_PAIRS];
    float rope_base;
    int rope_dims;
    const float *rope_factors;

    bool map_done;
    WGPUMapAsyncStatus map_status;

    /* greedy decoding through device id slots (wgpu_greedy.c): argmax_out[slot * WGB_SLOT_IDS
     * + i] holds id i, copied to a mappable buffer per slot that is read while later steps run */
    struct wgb_id_slot {
        WGPUBuffer buf;
        bool pending, done, has_value;
        WGPUMapAsyncStatus status;
        int n;                        /* ids being read, or read */
        int32_t value[WGB_SLOT_IDS]; /* once read, until the slot is filled again */
    } id_slots[WGB_ID_SLOTS];

    wgb_profile prof;
    struct wgb_tune_state *tune; /* kernel choices of this adapter (wgpu_autotune.c), made at first need */
    /* Dispatches recorded per kernel and command buffers submitted since the backend
     * started (tests check which kernels a step takes). */
    uint64_t dispatched[WGB_K_COUNT];
    uint64_t submitted;

    bool failed;
    char error[1024];
} wgb_ctx;

/* wgpu_greedy.c */
void wgb_op_argmax_to_slot(wg_backend *b, const wg_tensor *x, int64_t row, int slot, int pos);
void wgb_op_slot_read_start(wg_backend *b, int slot, int n);
bool wgb_op_get_rows_from_slot(wg_backend *b, const wg_tensor *table, int slot, int n, wg_tensor *out);
bool wgb_op_read_slot(wg_backend *b, int slot, int n, int32_t *ids);
void wgb_id_slots_destroy(wgb_ctx *c);
/* wgpu_backend.c: an open command encoder with no compute pass open (for copies) */
bool wgb_encoder_outside_pass(wgb_ctx *c);
/* wgpu_backend.c: an empty tensor handle with n_parts parts */
struct wg_tensor *wgb_tensor_new(uint32_t type, int64_t ne0, int64_t ne1, int n_parts);
/* wgpu_backend.c: drops the cached bind groups that use buffer `id` (before it goes away) */
void wgb_purge_bind_groups(wgb_ctx *c, uint64_t id);

/* wgpu_kv_cache.c */
struct wg_tensor *wgb_kv_cache_create(wg_backend *b, int64_t ne0, int64_t ne1, int group, char *err,
                                      size_t err_size);
/* Gives a cache's slot back to its arena (the arena goes when it is empty). */
void wgb_kv_cache_release(wgb_ctx *c, wgb_tensor *wt);
void wgb_kv_arenas_destroy(wgb_ctx *c);

/* wgpu_profile.c */
void wgb_profile_init(wgb_ctx *c);
/* Starts timing in `mode` (1 per dispatch, 2 per pass; the device has timestamp queries);
 * false when the query set cannot be made. */
bool wgb_profile_open(wgb_ctx *c, int mode);
bool wgb_profile_full(const wgb_ctx *c);
/* Begins a compute pass, timed when profiling; `kernel` < 0 for a pass of many dispatches. */
WGPUComputePassEncoder wgb_profile_begin_pass(wgb_ctx *c, int kernel);
void wgb_profile_before_finish(wgb_ctx *c, WGPUCommandEncoder enc);
void wgb_profile_after_submit(wgb_ctx *c);
void wgb_profile_report(wgb_ctx *c);
void wgb_profile_host(wgb_ctx *c, int what, double t0); /* adds now - t0 to `what` */
void wgb_profile_destroy(wgb_ctx *c);

static inline wgb_ctx *wgb_ctx_of(const wg_backend *b) { return (wgb_ctx *)b->ctx; }
static inline uint64_t wgb_round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static inline wgb_tensor *wgb_t(const wg_tensor *t) { return (wgb_tensor *)t->impl; }
/* The whole buffer of an activation tensor. */
static inline wgb_bind wgb_act(const wg_tensor *t) { return wgb_t(t)->parts[0].bind; }
/* The part of a tensor that holds row `row` (NULL when none does), and the row's index in it. */
static inline const wgb_part *wgb_part_of(const wg_tensor *t, int64_t row, int64_t *local) {
    const wgb_tensor *wt = wgb_t(t);
    for (int i = 0; i < wt->n_parts; i++) {
        const wgb_part *p = &wt->parts[i];
        if (row >= p->row0 && row < p->row0 + p->rows) {
            *local = row - p->row0;
            return p;
        }
    }
    return NULL;
}

/* Records the first failure (later ones are usually consequences); synchronize reports it. */
void wgb_fail(wgb_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records one dispatch of kernel k with `param_bytes` of parameters and the storage
 * bindings (in binding order). Workgroup counts beyond one dimension's limit are
 * spread over y (kernels using the linear index (y * nx + x)). */
void wgb_dispatch(wgb_ctx *c, int k, const void *params, size_t param_bytes, const wgb_bind *binds, uint32_t gx,
                  uint32_t gy);
/* Dispatch of a kernel over `groups` workgroups, laid out over x and y. */
void wgb_dispatch_linear(wgb_ctx *c, int k, const void *params, size_t param_bytes, const wgb_bind *binds,
                         uint64_t groups);

/* Submits recorded work (no wait). */
void wgb_flush(wgb_ctx *c);
/* Copies `size` bytes of a buffer to host memory after all recorded work. */
/* Waits until *done (a map callback); a timeout marks the device lost. Timed as a wait
 * for read-backs by WGLLM_WEBGPU_PROFILE=host. */
bool wgb_wait_map(wgb_ctx *c, bool *done, const char *what);
bool wgb_read(wgb_ctx *c, const wgb_bind *src, uint64_t offset, void *dst, uint64_t size);
/* A scratch buffer (WGB_SCRATCH_*) of at least `bytes`; grows on demand. */
bool wgb_scratch(wgb_ctx *c, int slot, uint64_t bytes, wgb_bind *out);
/* Clear the tags (wgb_q8_tag) of the int8 copies made from activation `id`; of every copy. */
void wgb_q8_forget(wgb_ctx *c, uint64_t id);
void wgb_q8_forget_all(wgb_ctx *c);

/* wgpu_attn_flash.c: attention of n query rows (a prompt) through the flash kernel, as
 * wgb_op_attention takes it (operands checked, q unaliased); false, recording nothing,
 * where that kernel does not apply (too few tokens, a head_dim without a variant, a device
 * with too little workgroup memory). Its pipeline is built here the first time. */
bool wgb_flash_attention(wgb_ctx *c, wgb_bind qb, int64_t q_stride, wgb_bind kb, wgb_bind vb, bool half,
                         int64_t kv_stride, int pos0, int n, int n_head, int n_head_kv, int head_dim, int window,
                         wg_tensor *out, int row0);

/* the layer op (wgpu_layer.c): the fused ops below where a step allows them */
void wgb_op_layer(wg_backend *b, const wg_layer_desc *d, const wg_layer_step *s, const wg_layer_acts *a);

/* ops (wgpu_ops.c); the fused ones (matmul_add, matmul_swiglu, matmul_qkv, rope_rows,
 * qkv_rope_store, decode_attention) are not in the ops table: wgb_op_layer uses them. */
void wgb_op_get_rows(wg_backend *b, const wg_tensor *table, const int32_t *ids, int n, wg_tensor *out);
void wgb_op_copy_rows(wg_backend *b, const wg_tensor *src, int64_t src_row0, int n, wg_tensor *dst,
                      int64_t dst_row0);
void wgb_op_rms_norm(wg_backend *b, const wg_tensor *x, const wg_tensor *w, float eps, int n, wg_tensor *out);
void wgb_op_matmul(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out);
void wgb_op_matmul_add(wg_backend *b, const wg_tensor *w, const wg_tensor *x, int n, wg_tensor *out);
void wgb_op_matmul_swiglu(wg_backend *b, const wg_tensor *w_gate, const wg_tensor *w_up, const wg_tensor *x, int n,
                          wg_tensor *out);
void wgb_op_rope(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope, int pos0,
                 int row0);
bool wgb_op_rope_rows(wg_backend *b, wg_tensor *x, int n, int n_heads, int head_dim, const wg_rope *rope,
                      const int32_t *pos);
void wgb_op_kv_store(wg_backend *b, wg_tensor *k_cache, wg_tensor *v_cache, const wg_tensor *k,
                     const wg_tensor *v, int pos0, int n, int row0);
bool wgb_op_qkv_rope_store(wg_backend *b, const wg_tensor *wq, const wg_tensor *wk, const wg_tensor *wv,
                           const wg_tensor *x, int n_head, int n_head_kv, int head_dim, const wg_rope *rope,
                           int pos0, wg_tensor *q_out, wg_tensor *k_cache, wg_tensor *v_cache);
bool wgb_op_decode_attention(wg_backend *b, const wg_tensor *q, const wg_tensor *k, const wg_tensor *v,
                             wg_tensor *const *k_caches, wg_tensor *const *v_caches, const int32_t *pos, int n,
                             int n_head, int n_head_kv, int head_dim, const wg_rope *rope, int window,
                             wg_tensor *out);
bool wgb_op_argmax_rows(wg_backend *b, const wg_tensor *const *x, int n, int32_t *out);
bool wgb_op_matmul_qkv(wg_backend *b, const wg_tensor *wq, const wg_tensor *wk, const wg_tensor *wv,
                       const wg_tensor *x, int n, wg_tensor *q, wg_tensor *k, wg_tensor *v);
void wgb_op_attention(wg_backend *b, const wg_tensor *q, const wg_tensor *k_cache, const wg_tensor *v_cache,
                      int pos0, int n, int n_head, int n_head_kv, int head_dim, int window, wg_tensor *out,
                      int row0);
void wgb_op_swiglu(wg_backend *b, const wg_tensor *gate, const wg_tensor *up, int n, wg_tensor *out);
void wgb_op_add(wg_backend *b, wg_tensor *x, const wg_tensor *y, int n);
int32_t wgb_op_argmax(wg_backend *b, const wg_tensor *x, int64_t row);

#endif
