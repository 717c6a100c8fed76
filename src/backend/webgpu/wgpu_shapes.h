/* Shapes the WebGPU backend's C code and its kernels share, each defined here once: the C
 * side sizes dispatches and parameter blocks with the enum values, and every kernel gets
 * them as WGSL constants of the same names (without WGB_) put in front of its text
 * (WGB_SHAPES_WGSL, by wgpu_pipelines.c). A kernel never repeats one of these numbers. */
#ifndef WGLLM_WGPU_SHAPES_H
#define WGLLM_WGPU_SHAPES_H

/* X(name, value) */
#define WGB_SHAPES(X)                                                                                        \
    X(MATVEC_WG, 256)        /* matvec.wgsl: invocations a workgroup */                                     \
    X(MATVEC_TPR, 32)        /* matvec.wgsl: threads a row (a workgroup: MATVEC_WG / MATVEC_TPR rows) */    \
    X(MATMUL_TM, 128)        /* matmul.wgsl (f32 tiles): rows a workgroup */                                \
    X(MATMUL_TN, 64)         /* matmul.wgsl: tokens a workgroup */                                          \
    X(GET_ROWS_MAX_IDS, 120) /* get_rows.wgsl: ids of one dispatch (its parameter block) */                 \
    X(ROPE_MAX_PAIRS, 128)   /* rope, attention, kv_store_rows, matvec_q8_qkv: frequencies in the block */  \
    X(ROPE_MAX_ROWS, 32)     /* rope.wgsl: positions of one dispatch */                                     \
    X(DECODE_MAX_ROWS, 64)   /* attention.wgsl, kv_store_rows.wgsl: rows (streams) of one dispatch */       \
    X(ATTN_WG, 256)          /* attention.wgsl: invocations a workgroup = largest head_dim = chunk length */

#define WGB_SHAPE_ENUM(name, value) WGB_##name = (value),
enum { WGB_SHAPES(WGB_SHAPE_ENUM) WGB_SHAPES_END_ };
#undef WGB_SHAPE_ENUM

/* All of them as WGSL `const NAME: u32 = value;` lines. */
#define WGB_SHAPE_WGSL(name, value) "const " #name ": u32 = " #value "u;\n"
#define WGB_SHAPES_WGSL WGB_SHAPES(WGB_SHAPE_WGSL)

#endif
