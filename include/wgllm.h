/* wgllm: run Llama-family models from GGUF files.
 *
 * Threading contract: a wgllm_model is immutable after loading and may be shared
 * by any number of contexts on any threads. A wgllm_context (KV cache, logits)
 * and a wgllm_sampler are used by one thread at a time.
 *
 * Errors: functions return a wgllm_status; details are in a message. Functions
 * that create a handle take (err, err_size) and write a one-line message there;
 * functions on a context keep the last message, read with wgllm_context_error().
 * No function exits or aborts on bad input.
 */
#ifndef WGLLM_H
#define WGLLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WGLLM_VERSION "0.1.0"

typedef int32_t wgllm_token;

typedef enum wgllm_status {
    WGLLM_OK = 0,
    WGLLM_ERR_INVALID_ARG = 1, /* bad parameter from the caller */
    WGLLM_ERR_IO = 2,          /* cannot open / read / write a file */
    WGLLM_ERR_FORMAT = 3,      /* malformed file */
    WGLLM_ERR_UNSUPPORTED = 4, /* valid file using something we do not implement */
    WGLLM_ERR_NO_MEMORY = 5,
    WGLLM_ERR_CONTEXT_FULL = 6, /* tokens do not fit in the context window */
    WGLLM_ERR_BACKEND = 7,     /* backend failure (device lost, ...) */
} wgllm_status;

const char *wgllm_status_name(wgllm_status s);

/* ---- model ---- */
typedef struct wgllm_model wgllm_model;

typedef enum wgllm_backend_kind {
    WGLLM_BACKEND_CPU = 0,
    WGLLM_BACKEND_AUTO = 1,   /* a hardware WebGPU adapter if there is one and the model fits, else the CPU */
    WGLLM_BACKEND_WEBGPU = 2,
} wgllm_backend_kind;

/* Parses "cpu", "webgpu" or "auto"; false for anything else. */
bool wgllm_backend_kind_from_name(const char *name, wgllm_backend_kind *out);

typedef struct wgllm_model_params {
    wgllm_backend_kind backend;
    int n_threads;   /* CPU worker threads; <= 0: number of online CPUs */
    int device;      /* WebGPU adapter index (see `wgllm devices`); < 0: first suitable */
    bool vocab_only; /* load metadata and tokenizer, no weights */
    /* Read the file into private memory instead of mapping it. A mapped file must not
     * change while the model lives: truncating it (as `cp` over it does) kills the process
     * with SIGBUS at the next read of a weight. A private copy is immune to whatever happens
     * to the file after loading, at the cost of the weights' size in process memory on the
     * CPU backend (not shared with the page cache or other processes). GPU backends upload
     * each weight and free its copy at once. */
    bool private_copy;
} wgllm_model_params;

wgllm_model_params wgllm_model_default_params(void);

/* Loads a GGUF file. On failure *out is NULL and err holds a one-line message.
 * The caller frees the model with wgllm_model_free after every context on it. */
wgllm_status wgllm_model_load(const char *path, const wgllm_model_params *params,
                              wgllm_model **out, char *err, size_t err_size);
void wgllm_model_free(wgllm_model *m);

typedef struct wgllm_model_info {
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim;
    float rope_freq_base, norm_eps;
    bool tied_output;
    const char *name;    /* general.name or "" (owned by the model) */
    const char *backend; /* which backend runs the model and, under AUTO, why (owned by the model) */
    uint64_t weight_bytes;
    uint64_t device_memory; /* bytes the backend holds on its device (GPU), 0 for the CPU */
    const char *arch;       /* general.architecture ("llama", "qwen2", ...); "" with vocab_only (owned by the model) */
} wgllm_model_info;

void wgllm_model_get_info(const wgllm_model *m, wgllm_model_info *info);

/* ---- tokenizer ---- */
/* Encodes text (len bytes). Writes at most max_out ids and returns the total
 * count (call again with a larger buffer if it exceeds max_out), or -1 on error. */
int64_t wgllm_tokenize(const wgllm_model *m, const char *text, size_t len, bool add_bos,
                       wgllm_token *out, int64_t max_out);
/* Bytes of a whole id sequence (exact inverse of wgllm_tokenize). Returns the byte
 * count; out is NUL-terminated when cap > count. */
size_t wgllm_detokenize(const wgllm_model *m, const wgllm_token *ids, size_t n, char *out, size_t cap);
wgllm_token wgllm_token_bos(const wgllm_model *m);
wgllm_token wgllm_token_eos(const wgllm_model *m);
bool wgllm_add_bos_default(const wgllm_model *m);
/* wgllm_tokenize that, with parse_special, turns the text of special (control)
 * tokens such as "<|begin_of_text|>" or "<|eot_id|>" into those tokens; without
 * it they are plain text, exactly as wgllm_tokenize. */
int64_t wgllm_tokenize_special(const wgllm_model *m, const char *text, size_t len, bool add_bos,
                               bool parse_special, wgllm_token *out, int64_t max_out);
/* True for every token that ends a generation: eos, and end-of-turn tokens such
 * as Llama 3's <|eot_id|>, <|eom_id|> and <|end_of_text|>. */
bool wgllm_token_is_eog(const wgllm_model *m, wgllm_token t);
/* The exact bytes of one token's piece as it appears in running text (not at the
 * start: SentencePiece's U+2581 is a space, "<0xNN>" is that byte, control tokens are
 * ""). Returns a pointer owned by the model, valid while it lives and not
 * NUL-terminated, and writes its length to *len; NULL (and *len = 0) for an
 * out-of-range id or a NULL model. */
const char *wgllm_token_bytes(const wgllm_model *m, wgllm_token id, size_t *len);

/* Streaming detokenizer: text released by each new token, always valid UTF-8. */
typedef struct wgllm_detokenizer wgllm_detokenizer;
wgllm_detokenizer *wgllm_detokenizer_create(const wgllm_model *m);
void wgllm_detokenizer_free(wgllm_detokenizer *d);
/* Returns text borrowed until the next call on d (never NULL). */
const char *wgllm_detokenizer_push(wgllm_detokenizer *d, wgllm_token id, size_t *len);
const char *wgllm_detokenizer_flush(wgllm_detokenizer *d, size_t *len);

/* ---- context (one sequence: KV cache + logits) ---- */
typedef struct wgllm_context wgllm_context;

typedef struct wgllm_context_params {
    int n_ctx; /* <= 0: the model's training context */
} wgllm_context_params;

wgllm_context_params wgllm_context_default_params(void);
/* Checks that n_contexts contexts of n_ctx tokens (<= 0: the training context) fit: on a
 * backend that keeps them in host memory (the CPU), their KV caches and buffers against
 * the memory this process can still take (MemAvailable, the cgroup's memory limit,
 * RLIMIT_AS). WGLLM_ERR_NO_MEMORY with both sizes in err when they do not. A GPU backend
 * reports its own limit when the caches are created. wgllm_context_create checks one. */
wgllm_status wgllm_context_check_memory(const wgllm_model *m, int n_ctx, int n_contexts, char *err,
                                        size_t err_size);
wgllm_status wgllm_context_create(const wgllm_model *m, const wgllm_context_params *params,
                                  wgllm_context **out, char *err, size_t err_size);
void wgllm_context_free(wgllm_context *c);
const char *wgllm_context_error(const wgllm_context *c); /* "" if none */
int wgllm_context_n_ctx(const wgllm_context *c);
int wgllm_context_n_past(const wgllm_context *c); /* tokens in the KV cache */
/* Forgets cached tokens from position `pos` on (0 clears the sequence). */
void wgllm_context_truncate(wgllm_context *c, int pos);

/* Evaluates n tokens at positions n_past..n_past+n-1 and appends them to the
 * cache. Logits of the last token are then available; with all_logits, those of
 * every token in the batch. Fails with WGLLM_ERR_CONTEXT_FULL (nothing changed)
 * if the tokens do not fit, WGLLM_ERR_INVALID_ARG for an out-of-range id. */
wgllm_status wgllm_eval(wgllm_context *c, const wgllm_token *tokens, int n, bool all_logits);

/* Evaluates several sequences in one step: ctxs[i] (distinct contexts of one model)
 * appends n_tokens[i] >= 1 tokens from tokens[i], e.g. one token for a sequence that
 * is decoding and a chunk of prompt for one that is being prefilled. The weights are
 * read once for the whole step, which is what makes many concurrent streams cheap.
 * Afterwards each context holds its last token's logits (wgllm_get_logits(c, 0),
 * wgllm_greedy(c)), exactly as if it had been evaluated alone. Every context is
 * checked first: if any would overflow (WGLLM_ERR_CONTEXT_FULL) or has a bad id
 * (WGLLM_ERR_INVALID_ARG), nothing is evaluated and the offending context's
 * wgllm_context_error says why. Thread-safe across models; calls on one model
 * are serialised. */
wgllm_status wgllm_eval_batch(wgllm_context *const *ctxs, const wgllm_token *const *tokens, const int *n_tokens,
                              int n_seqs);

/* Logits of batch row i (0 = last evaluated token when all_logits was false).
 * Borrowed until the next wgllm_eval; NULL on a backend failure (see wgllm_context_error).
 * On a GPU backend the row is copied to the host on first use. */
const float *wgllm_get_logits(const wgllm_context *c, int i);
/* The most likely next token after the last evaluated one (first index on ties),
 * computed on the device where the backend can, so only one integer is read back.
 * -1 on failure. */
wgllm_token wgllm_greedy(wgllm_context *c);
/* wgllm_greedy of n contexts of one model (a batch just evaluated with wgllm_eval_batch),
 * out[i] for ctxs[i]; on a GPU backend all ids come back in one read instead of n.
 * WGLLM_ERR_INVALID_ARG for contexts of different models; on a failure, the failing
 * context's wgllm_context_error says why. */
wgllm_status wgllm_greedy_batch(wgllm_context *const *ctxs, int n, wgllm_token *out);
/* One decoding step of n contexts of one model, each fed the greedy choice from its last
 * logits (left by wgllm_eval, wgllm_eval_batch or this call): out[i] receives the token fed
 * to ctxs[i], whose logits afterwards are those after it. The same tokens and logits as
 * wgllm_greedy_batch followed by wgllm_eval_batch of its tokens. On a GPU backend (up to 64
 * contexts, and an embedding table the GPU holds in one buffer) the argmax of the new logits
 * stays on the device, and a following call over the same contexts, in the same order,
 * queues its step before reading back the tokens it feeds: the GPU runs step t+1 while the
 * caller handles the tokens of step t. A token that ends a sequence has been evaluated too
 * (wgllm_context_truncate takes it back). Checked first: WGLLM_ERR_INVALID_ARG for contexts
 * of different models, a context twice or one without logits, WGLLM_ERR_CONTEXT_FULL for a
 * full context (wgllm_context_error of the offending context says which); nothing is
 * evaluated then. On a backend failure (WGLLM_ERR_BACKEND) no token was added and the
 * contexts have no logits (evaluate again); every context's error says why. */
wgllm_status wgllm_decode_greedy_batch(wgllm_context *const *ctxs, int n, wgllm_token *out);
/* Runs once each shape of step that a server with these n contexts (of one model) takes: one
 * token of each of 1, 2, 3, 5, 9, 17, ... and n sequences (the sizes past each power of two,
 * where kernels change tiles) with their greedy steps, and a prompt step of step_tokens
 * tokens cut into chunks of `chunk` a sequence. A backend that builds or tunes its kernels
 * the first time a shape runs (a GPU) does so now instead of inside the first requests' steps;
 * on other backends it returns WGLLM_OK at once. The contexts are left empty (as after
 * wgllm_context_truncate to 0, with no logits). On failure, ctxs[0]'s error says why. */
wgllm_status wgllm_warm_up(wgllm_context *const *ctxs, int n, int step_tokens, int chunk);
int wgllm_n_vocab(const wgllm_model *m);
/* Greedy generation of up to n_max tokens after the last evaluated one (which must have
 * left its logits). Each token is passed to on_token (may be NULL), which returns false to
 * stop after it; generation also stops after an end-of-generation token when stop_at_eog
 * (that token is passed too) and when the context is full. On backends that can, the next
 * step is queued on the device before the current token is read back (the id stays on
 * the GPU), so the GPU does not idle while the CPU reads a token and records the next
 * step. Afterwards the context holds every produced token except the last, as after the
 * equivalent wgllm_greedy / wgllm_eval loop, and no logits (evaluate before sampling
 * again). Returns the number of tokens produced, -1 on failure (wgllm_context_error). */
int wgllm_generate_greedy(wgllm_context *c, int n_max, bool (*on_token)(wgllm_token t, void *user), void *user,
                          bool stop_at_eog);

/* Observer of the weight matrix products of a context's evaluations (importance
 * matrices, activation statistics). Called on the evaluating thread, before each product,
 * once per weight: `weight` is the weight's GGUF name ("blk.0.attn_q.weight", ...; the
 * output matrix is "output.weight", or "token_embd.weight" when tied to the embeddings),
 * x holds n_rows input rows (tokens of this context) of row_len floats. Both are borrowed
 * for the call. Weights sharing an input (q, k, v; gate, up) see the same rows, and a
 * product may be announced in several calls of fewer rows. */
typedef void (*wgllm_matmul_observer)(void *user, const char *weight, const float *x, int n_rows, int64_t row_len);
/* Sets (fn NULL: removes) the observer of c; per context, so the shared model is not
 * touched. Observing reads every input back from the device: slow on a GPU.
 * WGLLM_ERR_NO_MEMORY (see wgllm_context_error) if its row buffer cannot be made. */
wgllm_status wgllm_context_set_matmul_observer(wgllm_context *c, wgllm_matmul_observer fn, void *user);


/* ---- sampler ---- */
typedef struct wgllm_sampler wgllm_sampler;

typedef struct wgllm_sampler_params {
    float temperature;    /* <= 0: greedy (argmax) */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int repeat_last_n;    /* window of recent tokens the penalty looks at */
    uint64_t seed;
} wgllm_sampler_params;

wgllm_sampler_params wgllm_sampler_default_params(void);
/* NULL on invalid parameters (NaN, negative top_p, ...) with a message in err. */
wgllm_sampler *wgllm_sampler_create(const wgllm_sampler_params *p, char *err, size_t err_size);
void wgllm_sampler_free(wgllm_sampler *s);
/* Records a token (prompt or generated) for the repetition penalty. */
void wgllm_sampler_accept(wgllm_sampler *s, wgllm_token t);
/* Picks a token from n_vocab logits (not modified). If logprob is non-NULL it
 * receives log p(token) under the model's unmodified distribution. */
wgllm_token wgllm_sampler_sample(wgllm_sampler *s, const float *logits, int n_vocab, float *logprob);

#ifdef __cplusplus
}
#endif
#endif
