/* Tensor element types: numbering and block geometry identical to ggml's
 * (enum ggml_type), so GGUF files from llama.cpp load unchanged. */
#ifndef WGLLM_QUANT_TYPES_H
#define WGLLM_QUANT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum wg_type {
    WG_TYPE_F32 = 0,
    WG_TYPE_F16 = 1,
    WG_TYPE_Q4_0 = 2,
    WG_TYPE_Q4_1 = 3,
    WG_TYPE_Q5_0 = 6,
    WG_TYPE_Q5_1 = 7,
    WG_TYPE_Q8_0 = 8,
    WG_TYPE_Q8_1 = 9,
    WG_TYPE_Q2_K = 10,
    WG_TYPE_Q3_K = 11,
    WG_TYPE_Q4_K = 12,
    WG_TYPE_Q5_K = 13,
    WG_TYPE_Q6_K = 14,
    WG_TYPE_Q8_K = 15,
    WG_TYPE_I8 = 24,
    WG_TYPE_I16 = 25,
    WG_TYPE_I32 = 26,
    WG_TYPE_I64 = 27,
    WG_TYPE_F64 = 28,
    WG_TYPE_BF16 = 30,
    WG_TYPE_COUNT_ = 40 /* upper bound for table sizes, not a type */
} wg_type;

/* Geometry of one type: `block_size` elements are stored in `block_bytes` bytes.
 * Returns false for ids that ggml does not define or that we cannot size. */
bool wg_type_traits(uint32_t type, int64_t *block_size, int64_t *block_bytes);

/* Human name ("q4_0", "f32", ...) or NULL for an unknown id. */
const char *wg_type_name(uint32_t type);

/* Parses a name as written by wg_type_name (case-insensitive). Returns -1 if unknown. */
int wg_type_from_name(const char *name);

/* True when this build can dequantize / dot this type on the CPU. */
bool wg_type_supported(uint32_t type);

/* Bytes of a row of n elements; 0 if the type is unknown or n is not a multiple
 * of its block size. */
size_t wg_type_row_bytes(uint32_t type, int64_t n);

#endif
