/* libFuzzer target for the safetensors header parser: opens the input from memory and,
 * when it is accepted, checks every tensor lies inside the input with a size that
 * matches its shape, looks each one up by name and reads every readable element, so
 * any bound the parser failed to check shows up under ASan.
 * Seeds: tests/fuzz/corpus/safetensors (small valid and invalid files). */
#include "convert/safetensors.h"
#include "quant/types.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) __builtin_trap(); \
    } while (0)

static volatile float g_sink; /* keeps the reads from being optimised away */

static uint32_t elem_bytes(const wg_st_tensor *t) {
    static const struct {
        const char *name;
        uint32_t bytes;
    } sizes[] = {{"F64", 8}, {"I64", 8}, {"U64", 8}, {"F32", 4}, {"I32", 4},     {"U32", 4},     {"F16", 2},
                 {"BF16", 2}, {"I16", 2}, {"U16", 2}, {"I8", 1},  {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (strcmp(t->dtype, sizes[i].name) == 0) return sizes[i].bytes;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    err[0] = '\0';
    wg_st_file *f = wg_st_open_memory(data, size, err, sizeof err);
    if (!f) {
        REQUIRE(err[0] != '\0' && strchr(err, '\n') == NULL);
        return 0;
    }
    for (int64_t i = 0; i < wg_st_n_tensors(f); i++) {
        const wg_st_tensor *t = wg_st_tensor_at(f, i);
        REQUIRE(t && t->name && wg_st_find(f, t->name) == t);
        REQUIRE(t->n_dims >= 0 && t->n_dims <= WG_ST_MAX_DIMS);
        uint64_t count = 1;
        for (int d = 0; d < t->n_dims; d++) {
            REQUIRE(t->shape[d] >= 0);
            count *= (uint64_t)t->shape[d];
        }
        uint32_t eb = elem_bytes(t);
        REQUIRE(eb != 0 && count == t->n_elements && count * eb == t->nbytes);
        const uint8_t *p = t->data;
        REQUIRE(p >= data + 8 && (size_t)(p - data) <= size && t->nbytes <= size - (size_t)(p - data));
        char why[160];
        if (wg_st_tensor_readable(t, why, sizeof why)) {
            REQUIRE(t->type == WG_TYPE_F32 || t->type == WG_TYPE_F16 || t->type == WG_TYPE_BF16);
            float acc = 0.0f;
            for (uint64_t e = 0; e < t->n_elements; e++) acc += wg_st_get_f32(t, e);
            g_sink = acc;
        } else {
            REQUIRE(why[0] != '\0' && t->type == UINT32_MAX);
        }
    }
    REQUIRE(wg_st_tensor_at(f, wg_st_n_tensors(f)) == NULL);
    (void)wg_st_find(f, "model.embed_tokens.weight");
    wg_st_close(f);
    return 0;
}
