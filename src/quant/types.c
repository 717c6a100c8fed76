#include "quant/types.h"

#include <ctype.h>
#include <string.h>

typedef struct {
    const char *name;
    int64_t block_size;
    int64_t block_bytes;
    bool supported;
} type_info;

/* Sizes follow ggml's block structs (ggml-common.h); QK_K = 256. */
static const type_info k_types[WG_TYPE_COUNT_] = {
    [WG_TYPE_F32] = {"f32", 1, 4, true},
    [WG_TYPE_F16] = {"f16", 1, 2, true},
    [WG_TYPE_Q4_0] = {"q4_0", 32, 2 + 16, true},
    [WG_TYPE_Q4_1] = {"q4_1", 32, 2 + 2 + 16, true},
    [WG_TYPE_Q5_0] = {"q5_0", 32, 2 + 4 + 16, true},
    [WG_TYPE_Q5_1] = {"q5_1", 32, 2 + 2 + 4 + 16, true},
    [WG_TYPE_Q8_0] = {"q8_0", 32, 2 + 32, true},
    [WG_TYPE_Q8_1] = {"q8_1", 32, 4 + 32, false},
    [WG_TYPE_Q2_K] = {"q2_k", 256, 16 + 64 + 2 + 2, true},
    [WG_TYPE_Q3_K] = {"q3_k", 256, 32 + 64 + 12 + 2, true},
    [WG_TYPE_Q4_K] = {"q4_k", 256, 2 + 2 + 12 + 128, true},
    [WG_TYPE_Q5_K] = {"q5_k", 256, 2 + 2 + 12 + 32 + 128, true},
    [WG_TYPE_Q6_K] = {"q6_k", 256, 128 + 64 + 16 + 2, true},
    [WG_TYPE_Q8_K] = {"q8_k", 256, 4 + 256 + 32, true},
    [WG_TYPE_I8] = {"i8", 1, 1, false},
    [WG_TYPE_I16] = {"i16", 1, 2, false},
    [WG_TYPE_I32] = {"i32", 1, 4, false},
    [WG_TYPE_I64] = {"i64", 1, 8, false},
    [WG_TYPE_F64] = {"f64", 1, 8, false},
    [WG_TYPE_BF16] = {"bf16", 1, 2, true},
};

static const type_info *lookup(uint32_t type) {
    if (type >= WG_TYPE_COUNT_ || k_types[type].name == NULL) return NULL;
    return &k_types[type];
}

bool wg_type_traits(uint32_t type, int64_t *block_size, int64_t *block_bytes) {
    const type_info *t = lookup(type);
    if (!t) return false;
    if (block_size) *block_size = t->block_size;
    if (block_bytes) *block_bytes = t->block_bytes;
    return true;
}

const char *wg_type_name(uint32_t type) {
    const type_info *t = lookup(type);
    return t ? t->name : NULL;
}

int wg_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < WG_TYPE_COUNT_; i++) {
        const char *n = k_types[i].name;
        if (!n) continue;
        size_t j = 0;
        while (n[j] && name[j] && tolower((unsigned char)name[j]) == n[j]) j++;
        if (n[j] == 0 && name[j] == 0) return i;
    }
    return -1;
}

bool wg_type_supported(uint32_t type) {
    const type_info *t = lookup(type);
    return t && t->supported;
}

size_t wg_type_row_bytes(uint32_t type, int64_t n) {
    const type_info *t = lookup(type);
    if (!t || n < 0 || n % t->block_size != 0) return 0;
    return (size_t)(n / t->block_size) * (size_t)t->block_bytes;
}
