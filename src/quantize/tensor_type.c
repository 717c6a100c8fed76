/* Which type each tensor gets: llama.cpp's tensor_allows_quantization,
 * llama_tensor_get_type_impl (restricted to the dense Llama architecture and
 * the file types we write) and tensor_type_fallback. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "quant/types.h"
#include "quantize/quantize.h"

/* llama.cpp's LLAMA_FTYPE_* values. */
enum {
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9, FT_Q2_K = 10,
    FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15, FT_Q5_K_S = 16,
    FT_Q5_K_M = 17, FT_Q6_K = 18, FT_BF16 = 32,
};

static const wg_ftype k_ftypes[] = {
    {"f32", FT_F32, WG_TYPE_F32},        {"f16", FT_F16, WG_TYPE_F16},        {"bf16", FT_BF16, WG_TYPE_BF16},
    {"q4_0", FT_Q4_0, WG_TYPE_Q4_0},     {"q4_1", FT_Q4_1, WG_TYPE_Q4_1},     {"q5_0", FT_Q5_0, WG_TYPE_Q5_0},
    {"q5_1", FT_Q5_1, WG_TYPE_Q5_1},     {"q8_0", FT_Q8_0, WG_TYPE_Q8_0},     {"q2_k", FT_Q2_K, WG_TYPE_Q2_K},
    {"q3_k", FT_Q3_K_S, WG_TYPE_Q3_K},   {"q3_k_s", FT_Q3_K_S, WG_TYPE_Q3_K}, {"q3_k_m", FT_Q3_K_M, WG_TYPE_Q3_K},
    {"q3_k_l", FT_Q3_K_L, WG_TYPE_Q3_K}, {"q4_k", FT_Q4_K_S, WG_TYPE_Q4_K},   {"q4_k_s", FT_Q4_K_S, WG_TYPE_Q4_K},
    {"q4_k_m", FT_Q4_K_M, WG_TYPE_Q4_K}, {"q5_k", FT_Q5_K_S, WG_TYPE_Q5_K},   {"q5_k_s", FT_Q5_K_S, WG_TYPE_Q5_K},
    {"q5_k_m", FT_Q5_K_M, WG_TYPE_Q5_K}, {"q6_k", FT_Q6_K, WG_TYPE_Q6_K},
};
enum { N_FTYPES = sizeof k_ftypes / sizeof k_ftypes[0] };

const wg_ftype *wg_ftype_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_FTYPES; i++) {
        const char *n = k_ftypes[i].name;
        size_t j = 0;
        while (n[j] && name[j] && tolower((unsigned char)name[j]) == n[j]) j++;
        if (!n[j] && !name[j]) return &k_ftypes[i];
    }
    return NULL;
}

const char *wg_ftype_names(void) {
    return "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, "
           "q5_k_s, q5_k_m, q6_k (q3_k, q4_k, q5_k: the _s mixes)";
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool wg_qplan_quantizable(const char *name, uint32_t n_dims) {
    if (n_dims < 2) return false;
    if (!ends_with(name, "weight")) return false;
    if (strstr(name, "_norm.weight")) return false;
    if (strstr(name, "ffn_gate_inp.weight")) return false;
    if (!strcmp(name, "position_embd.weight") || !strcmp(name, "token_types.weight")) return false;
    return true;
}

/* Layer number of "blk.N. ..." names; -1 otherwise. */
static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) return -1;
    return l;
}

/* llama.cpp: the first and last eighth of the layers, and every third between. */
static bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

static bool is_quantized(uint32_t t) { return t != WG_TYPE_F32 && t != WG_TYPE_F16 && t != WG_TYPE_BF16; }

/* llama_tensor_get_type_impl for the architectures we load (dense, non-Falcon). */
static uint32_t mix_type(const wg_qplan *p, const char *name, int64_t ne0, uint32_t t) {
    const int ft = p->ft->ftype;
    const bool is_output = !strcmp(name, "output.weight");
    const bool is_embd = !strcmp(name, "token_embd.weight");
    if (is_output || (!p->has_output && is_embd)) {
        int64_t bs = 1;
        wg_type_traits(t, &bs, NULL);
        if (ne0 % bs != 0) return WG_TYPE_Q8_0;
        return t != WG_TYPE_Q8_0 ? WG_TYPE_Q6_K : t;
    }
    if (is_embd) return t;
    const int layer = layer_of(name);
    /* fused qkv and kv_b projections follow attn_v's rules in llama.cpp */
    if (strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight") || strstr(name, "attn_kv_b.weight")) {
        const int i = layer < 0 ? 0 : layer; /* llama.cpp counts attn_v tensors in layer order */
        if (ft == FT_Q2_K) t = p->n_gqa >= 4 ? WG_TYPE_Q4_K : WG_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = i < 2 ? WG_TYPE_Q5_K : WG_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = WG_TYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(i, p->n_attn_v)) t = WG_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && i < 4) t = WG_TYPE_Q5_K;
        if (p->is_70b && (t == WG_TYPE_Q3_K || t == WG_TYPE_Q4_K)) t = WG_TYPE_Q5_K;
        return t;
    }
    if (strstr(name, "ffn_down")) {
        const int i = layer < 0 ? 0 : layer, n = p->n_layer;
        if (ft == FT_Q2_K) t = WG_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = i < n / 16 ? WG_TYPE_Q5_K : WG_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = WG_TYPE_Q5_K;
        else if (ft == FT_Q4_K_M) {
            if (use_more_bits(i, n)) t = WG_TYPE_Q6_K;
        } else if (ft == FT_Q5_K_M && use_more_bits(i, n)) t = WG_TYPE_Q6_K;
        else if (ft == FT_Q4_K_S && i < n / 8) t = WG_TYPE_Q5_K;
        else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && p->has_imatrix && i < n / 8)
            t = ft == FT_Q4_0 ? WG_TYPE_Q4_1 : WG_TYPE_Q5_1;
        return t;
    }
    if (strstr(name, "attn_output.weight")) {
        if (ft == FT_Q2_K) t = WG_TYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = WG_TYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = WG_TYPE_Q5_K;
        return t;
    }
    return t;
}

/* tensor_type_fallback: block-256 types fall back to 32-element ones, then f16. */
static uint32_t fallback(uint32_t t, int64_t ne0, bool *fell_back) {
    int64_t bs = 1;
    wg_type_traits(t, &bs, NULL);
    if (ne0 % bs == 0) return t;
    if (fell_back) *fell_back = true;
    switch (t) {
    case WG_TYPE_Q2_K:
    case WG_TYPE_Q3_K: t = WG_TYPE_Q4_0; break;
    case WG_TYPE_Q4_K: t = WG_TYPE_Q5_0; break;
    case WG_TYPE_Q5_K: t = WG_TYPE_Q5_1; break;
    case WG_TYPE_Q6_K: t = WG_TYPE_Q8_0; break;
    default: break;
    }
    wg_type_traits(t, &bs, NULL);
    return ne0 % bs == 0 ? t : WG_TYPE_F16;
}

uint32_t wg_qplan_tensor_type(const wg_qplan *p, const char *name, int64_t ne0, bool *fell_back) {
    if (fell_back) *fell_back = false;
    uint32_t t = p->ft->base_type;
    if (!is_quantized(t)) return t; /* float targets: no mixes, every row length fits */
    if (!p->pure) t = mix_type(p, name, ne0, t);
    return fallback(t, ne0, fell_back);
}
