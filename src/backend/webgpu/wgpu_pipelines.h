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
    WGB_K_QUANTIZE_X_Q8,   /* decode x -> int8 blocks, for the Q4_0 x int8 matvec */
    WGB_K_MATVEC_Q4_0_Q8,
    WGB_K_RMS_NORM_Q8,            /* decode: RMSNorm that also writes the int8 x */
    WGB_K_MATVEC_Q4_0_Q8_SWIGLU,  /* decode: silu(Wg x) * (Wu x) in one dispatch */
    WGB_K_MATVEC_Q4_0_Q8_NT,      /* batched decode: a few tokens per weight read */
    WGB_K_KV_STORE_F16,           /* kv_store and attention over an f16 KV cache (shader-f16) */
    WGB_K_ATTENTION_F16,
    WGB_K_MATVEC_Q4_0_Q8_QKV,     /* decode: q, k, v products, rope and KV store in one dispatch */
    WGB_K_MATVEC_Q4_0_Q8_QKV_F16, /* the same into an f16 KV cache */
    WGB_K_KV_STORE_ROWS,          /* batched decode: each token's k, v into its sequence's caches */
    WGB_K_KV_STORE_ROWS_F16,
    WGB_K_MATMUL_Q4_0_Q8,         /* prompts: Q4_0 tiles times int8 x */
    WGB_K_MATVEC_Q4_0_Q8_NT_SWIGLU, /* batched decode: silu(Wg x) * (Wu x) for a few tokens */
    WGB_K_MATVEC_Q4_0_Q8_NT_QKV,    /* batched decode: q, k, v products for a few tokens */
    WGB_K_MATVEC_Q4_0_Q8_QKV_NEOX,  /* WGB_K_MATVEC_Q4_0_Q8_QKV(_F16) with NeoX-style rope */
    WGB_K_MATVEC_Q4_0_Q8_QKV_F16_NEOX,
    WGB_K_Q8_BATCH, /* batched decode, 9-64 tokens: + tile * WGB_Q8_BATCH_MODES + mode (wgpu_q8_batch.h) */
    WGB_K_Q8_BATCH_LAST = WGB_K_Q8_BATCH + WGB_Q8_BATCH_KERNELS - 1,
    WGB_K_COUNT
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
} wgb_pipelines;

/* Format index of a weight type (wg_type), or -1 if the backend has no kernels for it. */
int wgb_format_of(uint32_t type);

/* Builds every pipeline; false with the failing kernel and the compiler's message in err.
 * `subgroups`: use the subgroup entry points where a kernel has them (the device must
 * have the subgroups feature); otherwise their code is cut out of the kernel text.
 * `f16`: also the f16 KV cache kernels (the device must have shader-f16); without it
 * their pipelines stay empty. */
bool wgb_pipelines_create(wg_device *d, bool subgroups, bool f16, wgb_pipelines *p, char *err, size_t err_size);
void wgb_pipelines_destroy(wg_device *d, wgb_pipelines *p);

#endif
