#include "convert/llama_gguf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant/quant.h"
#include "quant/types.h"

#include <math.h>

#define MAX_LAYER_TENSORS 12

/* Per-layer tensors of each arch, in llama.cpp's usual file order. */
static int layer_kinds(const wg_llama_shape *s, wg_llama_tensor_kind *out) {
    static const wg_llama_tensor_kind llama[] = {
        WG_LT_ATTN_NORM, WG_LT_ATTN_Q, WG_LT_ATTN_K,   WG_LT_ATTN_V,  WG_LT_ATTN_OUTPUT,
        WG_LT_FFN_NORM,  WG_LT_FFN_GATE, WG_LT_FFN_DOWN, WG_LT_FFN_UP,
    };
    static const wg_llama_tensor_kind qwen2[] = {
        WG_LT_ATTN_NORM, WG_LT_ATTN_Q,  WG_LT_ATTN_Q_BIAS, WG_LT_ATTN_K,   WG_LT_ATTN_K_BIAS, WG_LT_ATTN_V,
        WG_LT_ATTN_V_BIAS, WG_LT_ATTN_OUTPUT, WG_LT_FFN_NORM, WG_LT_FFN_GATE, WG_LT_FFN_DOWN, WG_LT_FFN_UP,
    };
    static const wg_llama_tensor_kind qwen3[] = {
        WG_LT_ATTN_NORM,   WG_LT_ATTN_Q,   WG_LT_ATTN_Q_NORM, WG_LT_ATTN_K,  WG_LT_ATTN_K_NORM, WG_LT_ATTN_V,
        WG_LT_ATTN_OUTPUT, WG_LT_FFN_NORM, WG_LT_FFN_GATE,    WG_LT_FFN_DOWN, WG_LT_FFN_UP,
    };
    static const wg_llama_tensor_kind phi3[] = {
        WG_LT_ATTN_NORM, WG_LT_ATTN_QKV, WG_LT_ATTN_OUTPUT, WG_LT_FFN_NORM, WG_LT_FFN_DOWN, WG_LT_FFN_UP,
    };
    const wg_llama_tensor_kind *k = llama;
    int n = (int)(sizeof llama / sizeof llama[0]);
    switch (s->ext.arch) {
    case WG_LLAMA_ARCH_QWEN2: k = qwen2, n = (int)(sizeof qwen2 / sizeof qwen2[0]); break;
    case WG_LLAMA_ARCH_QWEN3: k = qwen3, n = (int)(sizeof qwen3 / sizeof qwen3[0]); break;
    case WG_LLAMA_ARCH_PHI3: k = phi3, n = (int)(sizeof phi3 / sizeof phi3[0]); break;
    default: break;
    }
    if (out) memcpy(out, k, (size_t)n * sizeof *k);
    return n;
}

static const char *kind_suffix(wg_llama_tensor_kind k) {
    switch (k) {
    case WG_LT_TOKEN_EMBD: return "token_embd.weight";
    case WG_LT_ATTN_NORM: return "attn_norm.weight";
    case WG_LT_ATTN_Q: return "attn_q.weight";
    case WG_LT_ATTN_K: return "attn_k.weight";
    case WG_LT_ATTN_V: return "attn_v.weight";
    case WG_LT_ATTN_OUTPUT: return "attn_output.weight";
    case WG_LT_FFN_NORM: return "ffn_norm.weight";
    case WG_LT_FFN_GATE: return "ffn_gate.weight";
    case WG_LT_FFN_DOWN: return "ffn_down.weight";
    case WG_LT_FFN_UP: return "ffn_up.weight";
    case WG_LT_OUTPUT_NORM: return "output_norm.weight";
    case WG_LT_OUTPUT: return "output.weight";
    case WG_LT_ROPE_FREQS: return "rope_freqs.weight";
    case WG_LT_ATTN_Q_BIAS: return "attn_q.bias";
    case WG_LT_ATTN_K_BIAS: return "attn_k.bias";
    case WG_LT_ATTN_V_BIAS: return "attn_v.bias";
    case WG_LT_ATTN_Q_NORM: return "attn_q_norm.weight";
    case WG_LT_ATTN_K_NORM: return "attn_k_norm.weight";
    case WG_LT_ATTN_QKV: return "attn_qkv.weight";
    case WG_LT_KIND_COUNT: break;
    }
    return "?";
}

const char *wg_llama_arch_name(int32_t arch) {
    switch (arch) {
    case WG_LLAMA_ARCH_LLAMA: return "llama";
    case WG_LLAMA_ARCH_QWEN2: return "qwen2";
    case WG_LLAMA_ARCH_QWEN3: return "qwen3";
    case WG_LLAMA_ARCH_PHI3: return "phi3";
    default: return NULL;
    }
}

int32_t wg_llama_head_dim(const wg_llama_shape *s) {
    return s->ext.head_dim > 0 ? s->ext.head_dim : (s->n_head > 0 ? s->n_embd / s->n_head : 0);
}

bool wg_llama_shape_check(const wg_llama_shape *s, char *err, size_t err_size) {
    const struct {
        const char *name;
        int32_t v;
    } dims[] = {
        {"dim", s->n_embd},     {"ffn", s->n_ff},        {"layers", s->n_layer}, {"heads", s->n_head},
        {"kv-heads", s->n_head_kv}, {"vocab", s->n_vocab}, {"ctx", s->n_ctx},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (dims[i].v <= 0 || dims[i].v > WG_LLAMA_MAX_DIM) {
            snprintf(err, err_size, "%s must be in 1..%d (got %d)", dims[i].name, WG_LLAMA_MAX_DIM,
                     (int)dims[i].v);
            return false;
        }
    }
    if (s->ext.head_dim < 0 || s->ext.head_dim > WG_LLAMA_MAX_DIM / s->n_head) {
        snprintf(err, err_size, "head size %d out of range", (int)s->ext.head_dim);
        return false;
    }
    if (s->ext.head_dim > 0 && s->ext.head_dim % 2 != 0) {
        snprintf(err, err_size, "head size %d must be even for rotary embeddings", (int)s->ext.head_dim);
        return false;
    }
    if (s->ext.head_dim == 0 && s->n_embd % s->n_head != 0) {
        snprintf(err, err_size, "dim %d is not a multiple of heads %d", (int)s->n_embd, (int)s->n_head);
        return false;
    }
    if (s->ext.head_dim == 0 && (s->n_embd / s->n_head) % 2 != 0) {
        snprintf(err, err_size, "head size %d (dim / heads) must be even for rotary embeddings",
                 (int)(s->n_embd / s->n_head));
        return false;
    }
    if (s->n_head % s->n_head_kv != 0) {
        snprintf(err, err_size, "heads %d is not a multiple of kv-heads %d", (int)s->n_head, (int)s->n_head_kv);
        return false;
    }
    if (!wg_llama_arch_name(s->ext.arch)) {
        snprintf(err, err_size, "unknown architecture %d", (int)s->ext.arch);
        return false;
    }
    if (s->ext.rope_dims < 0 || s->ext.rope_dims % 2 != 0 || s->ext.rope_dims > wg_llama_head_dim(s)) {
        snprintf(err, err_size, "rotary dimensions %d must be even and at most the head size %d",
                 (int)s->ext.rope_dims, (int)wg_llama_head_dim(s));
        return false;
    }
    if (s->ext.swa_window < 0) {
        snprintf(err, err_size, "sliding window %d must not be negative", (int)s->ext.swa_window);
        return false;
    }
    return true;
}

int wg_llama_tensor_count(const wg_llama_shape *s) {
    return 1 + s->n_layer * layer_kinds(s, NULL) + 1 + (s->tied ? 0 : 1) + (s->ext.rope_freqs ? 1 : 0);
}

bool wg_llama_tensor_at(const wg_llama_shape *s, int index, wg_llama_tensor_desc *out) {
    int n = wg_llama_tensor_count(s);
    if (index < 0 || index >= n) return false;
    memset(out, 0, sizeof *out);
    out->index = index;
    out->layer = -1;
    wg_llama_tensor_kind kinds[MAX_LAYER_TENSORS];
    int per_layer = layer_kinds(s, kinds);
    if (index == 0) {
        out->kind = WG_LT_TOKEN_EMBD;
    } else if (index <= s->n_layer * per_layer) {
        out->layer = (index - 1) / per_layer;
        out->kind = kinds[(index - 1) % per_layer];
    } else if (index == s->n_layer * per_layer + 1) {
        out->kind = WG_LT_OUTPUT_NORM;
    } else if (s->ext.rope_freqs && index == n - 1) {
        out->kind = WG_LT_ROPE_FREQS;
    } else {
        out->kind = WG_LT_OUTPUT;
    }

    int64_t head_dim = wg_llama_head_dim(s);
    int64_t kv_dim = head_dim * s->n_head_kv, q_dim = head_dim * s->n_head;
    int64_t cols = s->n_embd, rows = 1;
    switch (out->kind) {
    case WG_LT_TOKEN_EMBD:
    case WG_LT_OUTPUT: rows = s->n_vocab; break;
    case WG_LT_ATTN_NORM:
    case WG_LT_FFN_NORM:
    case WG_LT_OUTPUT_NORM: out->is_norm = true; break;
    case WG_LT_ATTN_Q: rows = q_dim; break;
    case WG_LT_ATTN_OUTPUT:
        cols = q_dim;
        rows = s->n_embd;
        break;
    case WG_LT_ROPE_FREQS:
        cols = head_dim / 2;
        out->is_norm = true;
        break;
    case WG_LT_ATTN_K:
    case WG_LT_ATTN_V: rows = kv_dim; break;
    case WG_LT_ATTN_QKV: rows = q_dim + 2 * kv_dim; break;
    case WG_LT_FFN_GATE: rows = s->n_ff; break;
    case WG_LT_FFN_UP: rows = s->ext.arch == WG_LLAMA_ARCH_PHI3 ? 2 * (int64_t)s->n_ff : s->n_ff; break;
    case WG_LT_FFN_DOWN:
        cols = s->n_ff;
        rows = s->n_embd;
        break;
    case WG_LT_ATTN_Q_BIAS:
        cols = q_dim;
        out->is_norm = true;
        break;
    case WG_LT_ATTN_K_BIAS:
    case WG_LT_ATTN_V_BIAS:
        cols = kv_dim;
        out->is_norm = true;
        break;
    case WG_LT_ATTN_Q_NORM:
    case WG_LT_ATTN_K_NORM:
        cols = head_dim;
        out->is_norm = true;
        break;
    case WG_LT_KIND_COUNT: break;
    }
    out->n_cols = cols;
    out->n_rows = rows;
    if (out->layer >= 0)
        snprintf(out->name, sizeof out->name, "blk.%d.%s", out->layer, kind_suffix(out->kind));
    else
        snprintf(out->name, sizeof out->name, "%s", kind_suffix(out->kind));
    return true;
}

int wg_llama_file_type(uint32_t type) {
    switch (type) {
    case WG_TYPE_F32: return 0;  /* LLAMA_FTYPE_ALL_F32 */
    case WG_TYPE_F16: return 1;  /* LLAMA_FTYPE_MOSTLY_F16 */
    case WG_TYPE_BF16: return 32; /* LLAMA_FTYPE_MOSTLY_BF16 */
    case WG_TYPE_Q4_0: return 2; /* LLAMA_FTYPE_MOSTLY_Q4_0 */
    case WG_TYPE_Q8_0: return 7; /* LLAMA_FTYPE_MOSTLY_Q8_0 */
    default: return -1;
    }
}

int wg_llama_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    if (n > 256) return 256;
    return (int)n;
}

bool wg_llama_set_vocab_kv(gguf_writer *w, const wg_vocab *v) {
    bool ok = gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    ok = ok && gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->pieces, (size_t)v->n);
    ok = ok && gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, v->scores, (size_t)v->n);
    ok = ok && gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, v->types, (size_t)v->n);
    if (v->bos >= 0) ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (v->eos >= 0) ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (v->unk >= 0) ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (v->pad >= 0) ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad);
    ok = ok && gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos);
    ok = ok && gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos);
    ok = ok && gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix);
    return ok;
}

static uint64_t total_params(const wg_llama_shape *s);

void wg_llama_size_label(uint64_t n, char *buf, size_t size) {
    /* as gguf-py's model_weight_count_rounded_notation: at least two significant digits */
    double scaled = (double)n * 1e-3;
    const char *suffix = "K";
    if (n > 1000000000000ull) scaled = (double)n * 1e-12, suffix = "T";
    else if (n > 1000000000ull) scaled = (double)n * 1e-9, suffix = "B";
    else if (n > 1000000ull) scaled = (double)n * 1e-6, suffix = "M";
    double whole = nearbyint(scaled); /* Python's round(): half to even, the default mode */
    int digits = 0;
    for (double d = whole; d >= 1.0; d = floor(d / 10.0)) digits++;
    int fix = digits >= 2 ? 0 : 2 - digits;
    snprintf(buf, size, "%.*f%s", fix, scaled, suffix);
}

/* "<arch>.<key>" */
static const char *akey(const wg_llama_shape *s, const char *key, char *buf, size_t size) {
    snprintf(buf, size, "%s.%s", wg_llama_arch_name(s->ext.arch), key);
    return buf;
}

static bool set_model_kv(gguf_writer *w, const wg_llama_shape *s, const wg_llama_write_opts *o) {
    char k[96];
    bool hf = o->hf_metadata;
    bool ok = gguf_writer_set_str(w, "general.architecture", wg_llama_arch_name(s->ext.arch));
    if (hf) ok = ok && gguf_writer_set_str(w, "general.type", "model");
    if (o->name) ok = ok && gguf_writer_set_str(w, "general.name", o->name);
    if (hf) {
        char label[32];
        wg_llama_size_label(total_params(s), label, sizeof label);
        ok = ok && gguf_writer_set_str(w, "general.size_label", label);
        ok = ok && gguf_writer_set_u32(w, "general.quantization_version", 2); /* GGML_QNT_VERSION */
    }
    ok = ok && gguf_writer_set_u32(w, "general.file_type", (uint32_t)wg_llama_file_type(o->type));
    ok = ok && gguf_writer_set_u32(w, akey(s, "context_length", k, sizeof k), (uint32_t)s->n_ctx);
    ok = ok && gguf_writer_set_u32(w, akey(s, "embedding_length", k, sizeof k), (uint32_t)s->n_embd);
    ok = ok && gguf_writer_set_u32(w, akey(s, "block_count", k, sizeof k), (uint32_t)s->n_layer);
    ok = ok && gguf_writer_set_u32(w, akey(s, "feed_forward_length", k, sizeof k), (uint32_t)s->n_ff);
    ok = ok && gguf_writer_set_u32(w, akey(s, "attention.head_count", k, sizeof k), (uint32_t)s->n_head);
    ok = ok && gguf_writer_set_u32(w, akey(s, "attention.head_count_kv", k, sizeof k), (uint32_t)s->n_head_kv);
    uint32_t head_dim = (uint32_t)wg_llama_head_dim(s);
    if (hf || (s->ext.head_dim > 0 && s->ext.head_dim * s->n_head != s->n_embd)) {
        ok = ok && gguf_writer_set_u32(w, akey(s, "attention.key_length", k, sizeof k), head_dim);
        ok = ok && gguf_writer_set_u32(w, akey(s, "attention.value_length", k, sizeof k), head_dim);
    }
    uint32_t rope_dims = s->ext.rope_dims > 0 ? (uint32_t)s->ext.rope_dims : head_dim;
    ok = ok && gguf_writer_set_u32(w, akey(s, "rope.dimension_count", k, sizeof k), rope_dims);
    float base = s->ext.rope_freq_base > 0 ? s->ext.rope_freq_base : 10000.0f;
    float eps = s->ext.rms_eps > 0 ? s->ext.rms_eps : 1e-5f;
    ok = ok && gguf_writer_set_f32(w, akey(s, "rope.freq_base", k, sizeof k), base);
    ok = ok && gguf_writer_set_f32(w, akey(s, "attention.layer_norm_rms_epsilon", k, sizeof k), eps);
    if (s->ext.rope_scaling == WG_LLAMA_ROPE_SCALING_LINEAR) {
        ok = ok && gguf_writer_set_str(w, akey(s, "rope.scaling.type", k, sizeof k), "linear");
        ok = ok && gguf_writer_set_f32(w, akey(s, "rope.scaling.factor", k, sizeof k), s->ext.rope_scaling_factor);
    }
    /* Llama 3 scaling is the tensor rope_freqs.weight alone, as llama.cpp's converter writes it:
       llama.cpp refuses a "llama3" scaling type (it has no such enum value). phi3 always has the
       original context (its long-context scaling would start there). */
    if (s->ext.rope_scaling_orig_ctx > 0 &&
        (s->ext.rope_scaling == WG_LLAMA_ROPE_SCALING_LINEAR || s->ext.arch == WG_LLAMA_ARCH_PHI3))
        ok = ok && gguf_writer_set_u32(w, akey(s, "rope.scaling.original_context_length", k, sizeof k),
                                       (uint32_t)s->ext.rope_scaling_orig_ctx);
    /* llama.cpp writes phi3's window always (0: none) and reads llama's when present */
    if (s->ext.swa_window > 0 || s->ext.arch == WG_LLAMA_ARCH_PHI3)
        ok = ok && gguf_writer_set_u32(w, akey(s, "attention.sliding_window", k, sizeof k), (uint32_t)s->ext.swa_window);
    if (s->ext.arch == WG_LLAMA_ARCH_LLAMA)
        ok = ok && gguf_writer_set_u32(w, akey(s, "vocab_size", k, sizeof k), (uint32_t)s->n_vocab);
    return ok;
}

/* Storage type of one tensor: norms stay f32; a matrix whose rows do not split
 * into whole blocks of the target type falls back to f16. */
static uint32_t tensor_type(const wg_llama_tensor_desc *t, uint32_t target) {
    if (t->is_norm) return WG_TYPE_F32;
    if (wg_type_row_bytes(target, t->n_cols) == 0) return WG_TYPE_F16;
    return target;
}

/* ---- parallel conversion of one tensor ---- */

typedef struct convert_job {
    const wg_llama_tensor_desc *t;
    uint32_t type;
    size_t row_bytes;
    int64_t chunk_rows;
    atomic_llong next_chunk;
    wg_llama_fill_fn fill;
    void *fill_ctx;
    uint8_t *out;
    atomic_bool failed;
} convert_job;

static void *convert_worker(void *arg) {
    convert_job *job = arg;
    const wg_llama_tensor_desc *t = job->t;
    float *scratch = malloc((size_t)job->chunk_rows * (size_t)t->n_cols * sizeof(float));
    if (!scratch) {
        atomic_store(&job->failed, true);
        return NULL;
    }
    int64_t n_chunks = (t->n_rows + job->chunk_rows - 1) / job->chunk_rows;
    for (;;) {
        int64_t c = atomic_fetch_add(&job->next_chunk, 1);
        if (c >= n_chunks || atomic_load(&job->failed)) break;
        int64_t row0 = c * job->chunk_rows;
        int64_t n = t->n_rows - row0 < job->chunk_rows ? t->n_rows - row0 : job->chunk_rows;
        job->fill(job->fill_ctx, t, row0, n, scratch);
        for (int64_t r = 0; r < n; r++) {
            uint8_t *dst = job->out + (size_t)(row0 + r) * job->row_bytes;
            if (!wg_quantize_row(job->type, scratch + (size_t)r * (size_t)t->n_cols, dst, t->n_cols)) {
                atomic_store(&job->failed, true);
                break;
            }
        }
    }
    free(scratch);
    return NULL;
}

/* Converts all rows of t into out (n_rows * row_bytes bytes). */
static bool convert_tensor(const wg_llama_tensor_desc *t, uint32_t type, wg_llama_fill_fn fill, void *fill_ctx,
                           int n_threads, uint8_t *out, char *err, size_t err_size) {
    convert_job job;
    job.t = t;
    job.type = type;
    job.row_bytes = wg_type_row_bytes(type, t->n_cols);
    /* ~1 MiB of f32 scratch per chunk: big enough to amortise, small enough to balance threads. */
    job.chunk_rows = (1 << 18) / t->n_cols;
    if (job.chunk_rows < 1) job.chunk_rows = 1;
    atomic_init(&job.next_chunk, 0);
    atomic_init(&job.failed, false);
    job.fill = fill;
    job.fill_ctx = fill_ctx;
    job.out = out;

    int64_t n_chunks = (t->n_rows + job.chunk_rows - 1) / job.chunk_rows;
    int n_workers = n_threads < 1 ? 1 : n_threads;
    if (n_workers > n_chunks) n_workers = (int)n_chunks;

    pthread_t *threads = calloc((size_t)n_workers, sizeof *threads);
    if (!threads) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    int started = 0;
    /* This thread works too; the others are extra workers. */
    for (int i = 1; i < n_workers; i++) {
        if (pthread_create(&threads[i], NULL, convert_worker, &job) != 0) break;
        started = i;
    }
    convert_worker(&job);
    for (int i = 1; i <= started; i++) pthread_join(threads[i], NULL);
    free(threads);
    if (atomic_load(&job.failed)) {
        snprintf(err, err_size, "%s: cannot convert to %s (out of memory or unsupported type)", t->name,
                 wg_type_name(type));
        return false;
    }
    return true;
}

static uint64_t total_params(const wg_llama_shape *s) {
    uint64_t n = 0;
    for (int i = 0; i < wg_llama_tensor_count(s); i++) {
        wg_llama_tensor_desc t;
        wg_llama_tensor_at(s, i, &t);
        n += (uint64_t)t.n_cols * (uint64_t)t.n_rows;
    }
    return n;
}

static void human_size(uint64_t bytes, char *buf, size_t size) {
    if (bytes >= (1ull << 30))
        snprintf(buf, size, "%.2f GiB", (double)bytes / (double)(1ull << 30));
    else
        snprintf(buf, size, "%.1f MiB", (double)bytes / (double)(1ull << 20));
}

/* Adds every tensor's info to w; reports the total and largest tensor sizes and
 * prints one note if some matrices fall back to f16. */
static bool add_tensor_infos(gguf_writer *w, const wg_llama_shape *s, const wg_llama_write_opts *opts,
                             const char *prefix, uint64_t *total_bytes, size_t *max_bytes) {
    int n_fallback = 0;
    unsigned fallback_kinds = 0;
    *total_bytes = 0;
    *max_bytes = 0;
    for (int i = 0; i < wg_llama_tensor_count(s); i++) {
        wg_llama_tensor_desc t;
        wg_llama_tensor_at(s, i, &t);
        uint32_t type = tensor_type(&t, opts->type);
        if (type != opts->type && !t.is_norm) {
            n_fallback++;
            fallback_kinds |= 1u << t.kind;
        }
        int64_t ne[2] = {t.n_cols, t.n_rows};
        if (!gguf_writer_add_tensor(w, t.name, type, t.is_norm ? 1 : 2, ne)) return false;
        size_t bytes = wg_type_row_bytes(type, t.n_cols) * (size_t)t.n_rows;
        *total_bytes += bytes;
        if (bytes > *max_bytes) *max_bytes = bytes;
    }
    if (n_fallback > 0 && opts->log) {
        char kinds[256] = "";
        size_t used = 0;
        for (unsigned k = 0; k < WG_LT_KIND_COUNT; k++)
            if (fallback_kinds & (1u << k) && used < sizeof kinds)
                used += (size_t)snprintf(kinds + used, sizeof kinds - used, "%s%s", used ? ", " : "",
                                         kind_suffix((wg_llama_tensor_kind)k));
        int64_t block = 0;
        wg_type_traits(opts->type, &block, NULL);
        fprintf(opts->log, "%s: note: %d tensors stored as f16: rows not a multiple of the %s block size %lld (%s)\n",
                prefix, n_fallback, wg_type_name(opts->type), (long long)block, kinds);
    }
    return true;
}

/* Converts and writes the tensors one by one through a single reusable buffer. */
static bool stream_tensors(gguf_writer *w, const wg_llama_shape *s, const wg_llama_write_opts *opts,
                           const char *prefix, uint64_t total_bytes, size_t max_bytes, wg_llama_fill_fn fill,
                           void *fill_ctx, char *err, size_t err_size) {
    int n_threads = opts->n_threads > 0 ? opts->n_threads : wg_llama_default_threads();
    bool progress = opts->progress && opts->log && total_params(s) > 100000000ull;
    uint8_t *buf = malloc(max_bytes ? max_bytes : 1);
    if (!buf) {
        snprintf(err, err_size, "out of memory (%zu bytes for one tensor)", max_bytes);
        return false;
    }
    int n_tensors = wg_llama_tensor_count(s);
    uint64_t done_bytes = 0;
    bool ok = true;
    for (int i = 0; ok && i < n_tensors; i++) {
        wg_llama_tensor_desc t;
        wg_llama_tensor_at(s, i, &t);
        uint32_t type = tensor_type(&t, opts->type);
        size_t bytes = wg_type_row_bytes(type, t.n_cols) * (size_t)t.n_rows;
        ok = convert_tensor(&t, type, fill, fill_ctx, t.n_rows > 1 ? n_threads : 1, buf, err, err_size);
        if (ok && !gguf_writer_write_tensor(w, buf, bytes)) {
            snprintf(err, err_size, "%s", gguf_writer_error(w));
            ok = false;
        }
        done_bytes += bytes;
        if (ok && progress) {
            char a[32], b[32];
            human_size(done_bytes, a, sizeof a);
            human_size(total_bytes, b, sizeof b);
            fprintf(opts->log, "%s: [%*d/%d] %-28s %-5s %s of %s\n", prefix, n_tensors >= 100 ? 3 : 2, i + 1,
                    n_tensors, t.name, wg_type_name(type), a, b);
        }
    }
    free(buf);
    return ok;
}

bool wg_llama_write_gguf(const char *path, const wg_llama_shape *s, const wg_vocab *v,
                         const wg_llama_write_opts *opts, wg_llama_fill_fn fill, void *fill_ctx, char *err,
                         size_t err_size) {
    if (!wg_llama_shape_check(s, err, err_size)) return false;
    if (wg_llama_file_type(opts->type) < 0) {
        snprintf(err, err_size, "cannot write weights of type %s (use f32, f16, bf16, q8_0 or q4_0)",
                 wg_type_name(opts->type) ? wg_type_name(opts->type) : "?");
        return false;
    }
    if (!v && !opts->vocab_kv) {
        snprintf(err, err_size, "no vocabulary to write");
        return false;
    }
    if (v && v->n != s->n_vocab) {
        snprintf(err, err_size, "vocabulary has %d pieces but the model has %d", (int)v->n, (int)s->n_vocab);
        return false;
    }
    const char *prefix = opts->log_prefix ? opts->log_prefix : "wgllm";
    gguf_writer *w = gguf_writer_create();
    if (!w) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    uint64_t total_bytes = 0;
    size_t max_bytes = 0;
    bool vocab_failed = false;
    bool ok = set_model_kv(w, s, opts);
    if (ok && v) {
        ok = wg_llama_set_vocab_kv(w, v);
        if (opts->hf_metadata) ok = ok && gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    } else if (ok) {
        ok = opts->vocab_kv(opts->vocab_ctx, w, err, err_size);
        vocab_failed = !ok;
    }
    ok = ok && add_tensor_infos(w, s, opts, prefix, &total_bytes, &max_bytes) && gguf_writer_begin(w, path);
    if (!ok) {
        if (!vocab_failed) snprintf(err, err_size, "%s", gguf_writer_error(w));
    } else {
        ok = stream_tensors(w, s, opts, prefix, total_bytes, max_bytes, fill, fill_ctx, err, err_size);
        if (ok && !gguf_writer_finish(w)) {
            snprintf(err, err_size, "%s", gguf_writer_error(w));
            ok = false;
        }
    }
    gguf_writer_free(w); /* removes the temporary file of a failed write */
    return ok;
}

bool wg_llama_write_vocab_gguf(const char *path, const wg_vocab *v, char *err, size_t err_size) {
    gguf_writer *w = gguf_writer_create();
    if (!w) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    bool ok = gguf_writer_set_str(w, "general.architecture", "llama") && wg_llama_set_vocab_kv(w, v) &&
              gguf_writer_begin(w, path) && gguf_writer_finish(w);
    if (!ok) snprintf(err, err_size, "%s", gguf_writer_error(w));
    gguf_writer_free(w);
    return ok;
}
