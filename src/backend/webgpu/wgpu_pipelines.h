/* The WebGPU backend's compute pipelines, all built once when the backend is created.
 *
 * Every kernel has the same binding scheme: group 0, binding 0 is its parameter block
 * (a uniform with a dynamic offset into the per-submit parameter buffer), bindings
 * 1..n are storage buffers; except the int8 decode pair (quantize_x_q8, matvec_q4_0_q8,
 * shared with the matvec benchmark), whose storage bindings come first (0..n-1) and the
 * parameter block last (n). Weight kernels (matvec, matmul, get_rows) exist once per
 * weight format: the format's decoding functions (kernels/fmt_<type>.wgsl, and for matvec
 * its block dot product kernels/dot_<type>.wgsl) are put in front of the generic body.
 *
 * WGLLM_KERNEL_DIR=/path loads kernels from that folder instead of the embedded copies
 * (for kernel development without rebuilding).
 */
#ifndef WGLLM_WGPU_PIPELINES_H
#define WGLLM_WGPU_PIPELINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/webgpu/wgpu_device.h"
#include "backend/webgpu/wgpu_q8_batch.h"
#include "backend/webgpu/wgpu_q8_prompt.h"
#include "backend/webgpu/wgpu_shapes.h"

/* Weight formats, in the order of the per-format kernels below. */
enum {
    WGB_FMT_F32,
    WGB_FMT_F16,
    WGB_FMT_BF16,
    WGB_FMT_Q4_0,
    WGB_FMT_Q4_1,
    WGB_FMT_Q5_0,
    WGB_FMT_Q5_1,
    WGB_FMT_Q8_0,
    WGB_FMT_Q4_K,
    WGB_FMT_Q5_K,
    WGB_FMT_Q6_K,
    WGB_FMT_COUNT
};

/* Weight formats with int8 kernels (kernels/q8dot_<fmt>.wgsl), in this order. */
enum { WGB_Q8F_Q4_0, WGB_Q8F_Q8_0, WGB_Q8F_Q4_K, WGB_Q8F_Q6_K, WGB_Q8F_Q5_K, WGB_Q8F_COUNT };
/* Weight formats of the fused q/k/v kernel: each int8 format (WGB_Q8F_*) for all three
 * matrices, then q and k in Q4_K or Q5_K with v in Q6_K (the layers of Q4_K_M and Q5_K_M
 * files that give attn_v more bits). */
enum { WGB_QKV_FMT_Q4_K_V_Q6_K = WGB_Q8F_COUNT, WGB_QKV_FMT_Q5_K_V_Q6_K, WGB_QKV_FMT_COUNT };
/* Variants of the fused q/k/v kernel: f16 KV cache, NeoX-style rope. */
enum { WGB_QKV_F16 = 1, WGB_QKV_NEOX = 2, WGB_QKV_VARIANTS = 4 };

/* Shapes of the int8 kernels (declared as WGSL consts in front of them, see above).
 * Tuning (H200, Llama-2-7B shapes, Q4_0): WG 128 / ROWS 4 is best over a whole layer; WG 64 /
 * ROWS 4 is 5-9% faster on 11008 x 4096 and 32000 x 4096 but 27% slower on 4096 x 11008. */
#define WGB_Q8_QUANT_WG 256 /* quantize_x_q8: invocations a workgroup, one packed word (4 elements) each */
#define WGB_Q8_WG 128    /* matvec_q8, matvec_q8_qkv: invocations a workgroup */
#define WGB_Q8_ROWS 4    /* their rows a workgroup (qkv: 4, two rotated pairs); matvec_q8_swiglu: rows a group */
#define WGB_Q8_SW_TPR 32 /* matvec_q8_swiglu: threads of a row group */
#define WGB_Q8_SW_RG 8   /* matvec_q8_swiglu: row groups a workgroup (32 rows: whole int8 blocks of its output) */
#define WGB_Q8_NT_TPR 32 /* lib_q8_nt.wgsl: threads of a row group */
#define WGB_Q8_NT_ROWS 16 /* lib_q8_nt.wgsl: rows a workgroup (nt_swiglu: half as many of each matrix) */
#define WGB_Q8_NT 8       /* lib_q8_nt.wgsl: tokens a dispatch (the first width below) */
/* The nt kernels' widths X(tokens a dispatch, rows a group, lanes a group): 8, and wider passes
 * that read each weight once for more tokens (built at first use; the autotune decides where
 * they win). The wide passes wait on their x reads from the L2 cache, so the later widths
 * share each x word among more rows: four rows a group (twice the registers, half the warps),
 * or groups of 8 lanes side by side in a run of WGB_Q8_NT_TPR threads (lib_q8_nt.wgsl): the
 * run's four groups load the same x words in one instruction, and a group's 32 threads span
 * four runs, summed through workgroup memory at the end. The last two are 8 tokens with such
 * groups of two or four rows, for steps of 2-8 tokens. Each width is a pipeline per format and nt kernel:
 * WGB_K_Q8_NT* + width index * WGB_Q8F_COUNT + format. */
#define WGB_Q8_NT_WIDTHS(X) \
    X(8, 2, 32) X(16, 2, 32) X(32, 2, 32) X(16, 4, 32) X(16, 2, 8) X(32, 2, 8) X(16, 4, 8) X(8, 2, 8) X(8, 4, 8)
#define WGB_Q8_NT_COUNT_ONE(w, r, l) +1
enum { WGB_Q8_NT_WIDTH_COUNT = 0 WGB_Q8_NT_WIDTHS(WGB_Q8_NT_COUNT_ONE) };
#undef WGB_Q8_NT_COUNT_ONE

/* Shape of the prompt attention kernel (kernels/attention_flash.wgsl, declared as WGSL consts in
 * front of it): query rows a workgroup (token-head pairs of one kv head), positions a K/V
 * tile, threads of a row group (each thread holds 4 rows). With head_dim 128 the tiles take
 * 26.25 KiB of workgroup memory, within the 32 KiB the kernel is allowed (WGB_FA_WG_MEM,
 * checked by the kernel); a device offering less keeps attention.wgsl for prompts too.
 * Built on first use (wgb_pipelines_add_flash).
 * Untuned: chosen to fit lavapipe's 32 KiB, not yet timed on a GPU. */
#define WGB_FA_ROWS 32
#define WGB_FA_BC 16
#define WGB_FA_TX 8
#define WGB_FA_WG_MEM 32768
/* Head dims of the prompt attention kernel (one pipeline each, f32 and f16 caches): a
 * multiple of 4 * WGB_FA_TX whose tiles fit WGB_FA_WG_MEM. Other head dims use attention.wgsl. */
#define WGB_FA_HEAD_DIMS(X) X(64) X(128)
#define WGB_FA_COUNT_ONE(hd) +2
enum { WGB_FA_KERNELS = 0 WGB_FA_HEAD_DIMS(WGB_FA_COUNT_ONE) };

typedef enum wgb_kernel {
    WGB_K_MATVEC,                            /* + format */
    WGB_K_MATMUL = WGB_K_MATVEC + WGB_FMT_COUNT, /* + format */
    WGB_K_GET_ROWS = WGB_K_MATMUL + WGB_FMT_COUNT, /* + format */
    WGB_K_RMS_NORM = WGB_K_GET_ROWS + WGB_FMT_COUNT,
    WGB_K_ROPE,
    WGB_K_KV_STORE,
    WGB_K_ATTENTION,
    WGB_K_ATTN_COMBINE,
    WGB_K_SWIGLU,
    WGB_K_ADD,
    WGB_K_COPY,
    WGB_K_ARGMAX,
    WGB_K_QUANTIZE_X_Q8,          /* decode x -> int8 blocks, for the int8 products */
    WGB_K_RMS_NORM_Q8,            /* decode: RMSNorm that also writes the int8 x */
    WGB_K_KV_STORE_F16,           /* kv_store and attention over an f16 KV cache (shader-f16) */
    WGB_K_ATTENTION_F16,
    WGB_K_KV_STORE_ROWS,          /* batched decode: each token's k, v into its sequence's caches */
    WGB_K_KV_STORE_ROWS_F16,
    WGB_K_ATTN_FLASH, /* prompts: + 2 * head-dim index (WGB_FA_HEAD_DIMS) + f16 cache */
    WGB_K_ATTN_FLASH_LAST = WGB_K_ATTN_FLASH + WGB_FA_KERNELS - 1,
    WGB_K_Q8_MATVEC,                                   /* one token, + int8 format (WGB_Q8F_*) */
    WGB_K_Q8_SWIGLU = WGB_K_Q8_MATVEC + WGB_Q8F_COUNT, /* one token: silu(Wg x) * (Wu x), + format */
    /* a few tokens per weight read, + width index * WGB_Q8F_COUNT + format (WGB_Q8_NT_WIDTHS) */
    WGB_K_Q8_NT = WGB_K_Q8_SWIGLU + WGB_Q8F_COUNT,
    WGB_K_Q8_NT_SWIGLU = WGB_K_Q8_NT + WGB_Q8_NT_WIDTH_COUNT * WGB_Q8F_COUNT, /* silu(Wg x) * (Wu x), likewise */
    WGB_K_Q8_NT_QKV = WGB_K_Q8_NT_SWIGLU + WGB_Q8_NT_WIDTH_COUNT * WGB_Q8F_COUNT, /* q, k, v products, likewise */
    /* prompts: tiles times int8 x, + format * WGB_Q8_PROMPT_TILE_COUNT + tile (wgpu_q8_prompt.h) */
    WGB_K_Q8_MATMUL = WGB_K_Q8_NT_QKV + WGB_Q8_NT_WIDTH_COUNT * WGB_Q8F_COUNT,
    /* batched decode, 9-64 tokens: + format * WGB_Q8_BATCH_KERNELS + tile * WGB_Q8_BATCH_MODES + mode
     * (wgpu_q8_batch.h) */
    WGB_K_Q8_BATCH = WGB_K_Q8_MATMUL + WGB_Q8F_COUNT * WGB_Q8_PROMPT_TILE_COUNT,
    WGB_K_Q8_BATCH_LAST = WGB_K_Q8_BATCH + WGB_Q8F_COUNT * WGB_Q8_BATCH_KERNELS - 1,
    /* one token: q, k, v products, rope and KV store; + WGB_QKV_VARIANTS * WGB_QKV_FMT_* + variant */
    WGB_K_Q8_QKV = WGB_K_Q8_BATCH_LAST + 1,
    WGB_K_COUNT = WGB_K_Q8_QKV + WGB_QKV_VARIANTS * WGB_QKV_FMT_COUNT
} wgb_kernel;

/* Bytes of one parameter slot: the largest minUniformBufferOffsetAlignment WebGPU allows. */
#define WGB_SLOT_BYTES 256u
#define WGB_MAX_STORAGE 8 /* WebGPU's minimum maxStorageBuffersPerShaderStage */

typedef struct wgb_pipeline {
    WGPUComputePipeline pipe;
    WGPUBindGroupLayout layout;
    int n_storage;          /* storage bindings first_storage .. first_storage + n_storage - 1 */
    uint32_t first_storage; /* 1, or 0 when the parameter block comes last */
    uint32_t param_binding; /* 0, or n_storage */
    uint32_t written;       /* bit i: storage binding i (in binding order) is read-write */
    uint32_t param_slots;   /* size of the parameter block in slots */
    char label[64];         /* e.g. "matvec_q4_0", for errors and the profiler */
} wgb_pipeline;

typedef struct wgb_pipelines {
    wgb_pipeline k[WGB_K_COUNT];
    bool subgroups, f16;            /* as wgb_pipelines_create was asked */
    bool q8_built[WGB_Q8F_COUNT];   /* the int8 kernels of each int8 format (wgb_pipelines_add_q8) */
} wgb_pipelines;

/* Format index of a weight type (wg_type), or -1 if the backend has no kernels for it. */
int wgb_format_of(uint32_t type);
/* Int8 format index (WGB_Q8F_*) of a weight type, or -1 if it has no int8 kernels. */
int wgb_q8_format_of(uint32_t type);
/* The fused q/k/v kernel's format (WGB_QKV_FMT_*) for q and k of int8 format f_qk and v of
 * f_v, or -1 if there is none. */
int wgb_qkv_format_of(int f_qk, int f_v);
/* The prompt attention kernel (WGB_K_ATTN_FLASH + ...) for head_dim over an f16 (half) or f32
 * cache, or -1 if there is none for that head_dim. */
int wgb_flash_kernel(int head_dim, bool half);
/* Row lengths the int8 kernels of int8 format f take are multiples of this (32 or 256). */
int64_t wgb_q8_row_multiple(int f);

/* Builds every pipeline but the per-format products (wgb_pipelines_add_format) and the int8
 * kernels of each format (wgb_pipelines_add_q8); false
 * with the failing kernel and the compiler's message in err.
 * `subgroups`: use the subgroup entry points where a kernel has them (the device must
 * have the subgroups feature); otherwise their code is cut out of the kernel text.
 * `f16`: also the f16 KV cache kernels (the device must have shader-f16); without it
 * their pipelines stay empty. */
bool wgb_pipelines_create(wg_device *d, bool subgroups, bool f16, wgb_pipelines *p, char *err, size_t err_size);
/* The int8 kernels of int8 format f (WGB_Q8F_*), and the fused q/k/v kernels of the format
 * pairs whose formats are now both built: built when the first weight of the format is
 * loaded (a model needs one or two formats, and each costs ~10 pipelines at start). True
 * if they exist; false with the compiler's message. */
bool wgb_pipelines_add_q8(wg_device *d, wgb_pipelines *p, int f, char *err, size_t err_size);
/* The tiled matmul of weight format fmt (WGB_FMT_*), built with the first weight of the
 * format like the int8 kernels: a compiler that takes seconds a kernel (SwiftShader in a
 * browser: 4.5 to 10 s each for the 11 formats) would otherwise spend most of a load on
 * formats the model does not hold. True if it exists; false with the compiler's message. */
bool wgb_pipelines_add_format(wg_device *d, wgb_pipelines *p, int fmt, char *err, size_t err_size);
/* The nt kernels of width index `width` (WGB_Q8_NT_WIDTHS) for int8 format f, whose other
 * kernels are built: the wider ones are built on first use. True if they exist; false with
 * the compiler's message. */
bool wgb_pipelines_add_nt(wg_device *d, wgb_pipelines *p, int f, int width, char *err, size_t err_size);
/* The prompt attention kernel k (wgb_flash_kernel), built on its first use: a model needs
 * one of them, and each costs ~0.2 s at start on lavapipe. True if it exists; false with an
 * empty err where the device cannot have it (too little workgroup memory, no shader-f16),
 * with the compiler's message where it failed to build. */
bool wgb_pipelines_add_flash(wg_device *d, wgb_pipelines *p, int k, char *err, size_t err_size);
/* The prompt tile t (wgpu_q8_prompt.h) of int8 format f, whose other int8 kernels are built:
 * built on its first use (tile 0 comes with wgb_pipelines_add_q8). True if it exists; false
 * with an empty err where the device lacks its workgroup memory, with the compiler's message
 * where it failed to build. */
bool wgb_pipelines_add_q8_prompt(wg_device *d, wgb_pipelines *p, int f, int t, char *err, size_t err_size);
void wgb_pipelines_destroy(wg_device *d, wgb_pipelines *p);

#endif
