/* Builds the seed corpus of fuzz_gguf: small GGUF files encoded byte by byte
 * (independently of the project's writer), valid ones and slightly broken ones.
 *
 *   cc -std=c11 -D_GNU_SOURCE tests/fuzz/make_gguf_corpus.c -o make_gguf_corpus
 *   ./make_gguf_corpus tests/fuzz/corpus/gguf
 *
 * tests/unit/test_gguf.c includes this file (with GGUF_CORPUS_NO_MAIN defined)
 * to reuse the encoder and to check every case: valid files must open, each
 * broken one must fail with its own message. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte encoder ---- */

typedef struct gb {
    uint8_t *p;
    size_t len, cap;
} gb;

static void gb_bytes(gb *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void gb_u8(gb *b, uint8_t v) { gb_bytes(b, &v, 1); }
static void gb_u16(gb *b, uint16_t v) { gb_bytes(b, &v, 2); }
static void gb_u32(gb *b, uint32_t v) { gb_bytes(b, &v, 4); }
static void gb_u64(gb *b, uint64_t v) { gb_bytes(b, &v, 8); }
static void gb_f32(gb *b, float v) { gb_bytes(b, &v, 4); }
static void gb_f64(gb *b, double v) { gb_bytes(b, &v, 8); }

static void gb_str(gb *b, const char *s) {
    gb_u64(b, strlen(s));
    gb_bytes(b, s, strlen(s));
}

static void gb_pad(gb *b, size_t align) {
    while (b->len % align) gb_u8(b, 0);
}

static void patch_u32(gb *b, size_t at, uint32_t v) { memcpy(b->p + at, &v, 4); }
static void patch_u64(gb *b, size_t at, uint64_t v) { memcpy(b->p + at, &v, 8); }

/* ---- the base file ---- */

enum { VT_U8, VT_I8, VT_U16, VT_I16, VT_U32, VT_I32, VT_F32, VT_BOOL, VT_STR, VT_ARR, VT_U64, VT_I64, VT_F64 };

enum { BASE_MAX_KV = 32, BASE_N_TENSORS = 3 };

typedef struct base_opts {
    uint32_t version;   /* 2 or 3 */
    uint32_t alignment; /* 0: no general.alignment key (default 32) */
    int vocab;          /* strings in tokenizer.ggml.tokens */
} base_opts;

/* Where the fields of the base file are, so that cases can corrupt them. */
typedef struct layout {
    size_t n_tensors_at, n_kv_at;
    int n_kv;
    size_t kv_at[BASE_MAX_KV];       /* key length */
    size_t kv_type_at[BASE_MAX_KV];  /* value type */
    size_t kv_value_at[BASE_MAX_KV]; /* first byte after the type */
    int kv_arch, kv_align, kv_u32, kv_i8, kv_tokens, kv_scores;
    size_t t_at[BASE_N_TENSORS], t_ndims_at[BASE_N_TENSORS], t_ne_at[BASE_N_TENSORS], t_type_at[BASE_N_TENSORS],
        t_offset_at[BASE_N_TENSORS];
    uint64_t t_offset[BASE_N_TENSORS];
    size_t data_at;
    uint32_t alignment;
} layout;

/* Tensors of the base file: a f32 {4, 2}, b q4_0 {64, 2}, c f16 {3, 1, 1, 2}. */
static const struct {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t nbytes;
} k_base_tensors[BASE_N_TENSORS] = {
    {"a", 0, 2, {4, 2, 1, 1}, 32},
    {"b", 2, 2, {64, 2, 1, 1}, 72},
    {"c", 1, 4, {3, 1, 1, 2}, 12},
};

/* Value of element i of tensor a, and byte k of tensors b and c. */
static float base_a_value(int i) { return (float)i * 0.25f - 1.0f; }
static uint8_t base_byte(int tensor, uint64_t k) { return (uint8_t)(k * 37 + 11 + tensor); }

static int begin_kv(gb *b, layout *l, const char *key, uint32_t type) {
    int i = l->n_kv++;
    l->kv_at[i] = b->len;
    gb_str(b, key);
    l->kv_type_at[i] = b->len;
    gb_u32(b, type);
    l->kv_value_at[i] = b->len;
    return i;
}

static void base_kvs(gb *b, layout *l, const base_opts *o) {
    l->kv_arch = begin_kv(b, l, "general.architecture", VT_STR);
    gb_str(b, "llama");
    l->kv_align = -1;
    if (o->alignment) {
        l->kv_align = begin_kv(b, l, "general.alignment", VT_U32);
        gb_u32(b, o->alignment);
    }
    begin_kv(b, l, "test.u8", VT_U8), gb_u8(b, 200);
    l->kv_i8 = begin_kv(b, l, "test.i8", VT_I8), gb_u8(b, (uint8_t)-100);
    begin_kv(b, l, "test.u16", VT_U16), gb_u16(b, 60000);
    begin_kv(b, l, "test.i16", VT_I16), gb_u16(b, (uint16_t)-30000);
    l->kv_u32 = begin_kv(b, l, "test.u32", VT_U32), gb_u32(b, 4000000000u);
    begin_kv(b, l, "test.i32", VT_I32), gb_u32(b, (uint32_t)-2000000000);
    begin_kv(b, l, "test.f32", VT_F32), gb_f32(b, 0.5f);
    begin_kv(b, l, "test.bool", VT_BOOL), gb_u8(b, 1);
    begin_kv(b, l, "test.u64", VT_U64), gb_u64(b, (1ull << 40) + 1);
    begin_kv(b, l, "test.i64", VT_I64), gb_u64(b, (uint64_t)-(1ll << 40));
    begin_kv(b, l, "test.f64", VT_F64), gb_f64(b, 1e300);
    begin_kv(b, l, "test.str", VT_STR), gb_str(b, "tab\there \"quoted\"\x01");

    l->kv_tokens = begin_kv(b, l, "tokenizer.ggml.tokens", VT_ARR);
    gb_u32(b, VT_STR);
    gb_u64(b, (uint64_t)o->vocab);
    for (int i = 0; i < o->vocab; i++) {
        char tok[32];
        if (i < 3)
            snprintf(tok, sizeof tok, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else
            snprintf(tok, sizeof tok, "tok%d", i);
        gb_str(b, tok);
    }
    l->kv_scores = begin_kv(b, l, "tokenizer.ggml.scores", VT_ARR);
    gb_u32(b, VT_F32);
    gb_u64(b, (uint64_t)o->vocab);
    for (int i = 0; i < o->vocab; i++) gb_f32(b, -(float)i);
    begin_kv(b, l, "test.arr_i16", VT_ARR), gb_u32(b, VT_I16), gb_u64(b, 3);
    gb_u16(b, 1), gb_u16(b, (uint16_t)-2), gb_u16(b, 3);
    begin_kv(b, l, "test.arr_u64", VT_ARR), gb_u32(b, VT_U64), gb_u64(b, 2);
    gb_u64(b, UINT64_MAX), gb_u64(b, 7);
    begin_kv(b, l, "test.arr_bool", VT_ARR), gb_u32(b, VT_BOOL), gb_u64(b, 2);
    gb_u8(b, 0), gb_u8(b, 1);
    begin_kv(b, l, "test.arr_empty", VT_ARR), gb_u32(b, VT_U32), gb_u64(b, 0);
}

static void build_base(gb *b, layout *l, const base_opts *o) {
    memset(l, 0, sizeof *l);
    b->len = 0;
    l->alignment = o->alignment ? o->alignment : 32;
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, o->version);
    l->n_tensors_at = b->len;
    gb_u64(b, BASE_N_TENSORS);
    l->n_kv_at = b->len;
    gb_u64(b, 0); /* patched below */
    base_kvs(b, l, o);
    patch_u64(b, l->n_kv_at, (uint64_t)l->n_kv);

    uint64_t off = 0;
    for (int i = 0; i < BASE_N_TENSORS; i++) {
        l->t_at[i] = b->len;
        gb_str(b, k_base_tensors[i].name);
        l->t_ndims_at[i] = b->len;
        gb_u32(b, k_base_tensors[i].n_dims);
        l->t_ne_at[i] = b->len;
        for (uint32_t d = 0; d < k_base_tensors[i].n_dims; d++) gb_u64(b, (uint64_t)k_base_tensors[i].ne[d]);
        l->t_type_at[i] = b->len;
        gb_u32(b, k_base_tensors[i].type);
        l->t_offset_at[i] = b->len;
        l->t_offset[i] = off;
        gb_u64(b, off);
        off += k_base_tensors[i].nbytes;
        off = (off + l->alignment - 1) / l->alignment * l->alignment;
    }
    gb_pad(b, l->alignment);
    l->data_at = b->len;
    for (int i = 0; i < BASE_N_TENSORS; i++) {
        while (b->len < l->data_at + l->t_offset[i]) gb_u8(b, 0);
        for (uint64_t k = 0; k < k_base_tensors[i].nbytes; k++) {
            if (i == 0 && k % 4 == 0) gb_f32(b, base_a_value((int)(k / 4)));
            if (i != 0) gb_u8(b, base_byte(i, k));
        }
    }
    gb_pad(b, l->alignment);
}

/* ---- cases ---- */

typedef void (*mutate_fn)(gb *b, const layout *l);

typedef struct corpus_case {
    const char *seed;   /* file name in the corpus; NULL: only checked by the unit test */
    const char *expect; /* substring of the error; NULL: the file must open */
    base_opts base;
    mutate_fn mutate;
} corpus_case;

static void m_cut_header(gb *b, const layout *l) { b->len = 16; }
/* The counts are lowered with the cut, or the file would fail the count check first. */
static void m_cut_kv_key(gb *b, const layout *l) {
    patch_u64(b, l->n_tensors_at, 0);
    patch_u64(b, l->n_kv_at, 4);
    b->len = l->kv_at[3] + 5;
}
static void m_cut_kv_value(gb *b, const layout *l) {
    patch_u64(b, l->n_tensors_at, 0);
    patch_u64(b, l->n_kv_at, (uint64_t)l->kv_u32 + 1);
    b->len = l->kv_value_at[l->kv_u32] + 2;
}
static void m_cut_tensor_info(gb *b, const layout *l) { b->len = l->t_ndims_at[1] + 2; }
static void m_cut_tensor_data(gb *b, const layout *l) { b->len = l->data_at + 40; }
static void m_magic(gb *b, const layout *l) { memcpy(b->p, "GGML", 4); }
static void m_version1(gb *b, const layout *l) { patch_u32(b, 4, 1); }
static void m_version7(gb *b, const layout *l) { patch_u32(b, 4, 7); }
static void m_big_endian(gb *b, const layout *l) { patch_u32(b, 4, 3u << 24); }
static void m_many_kv(gb *b, const layout *l) { patch_u64(b, l->n_kv_at, 1ull << 40); }
static void m_many_tensors(gb *b, const layout *l) { patch_u64(b, l->n_tensors_at, UINT64_MAX); }
static void m_key_len(gb *b, const layout *l) { patch_u64(b, l->kv_at[2], 1ull << 40); }
static void m_str_len(gb *b, const layout *l) { patch_u64(b, l->kv_value_at[l->kv_arch], (uint64_t)b->len); }
static void m_arr_str_len(gb *b, const layout *l) {
    size_t second = l->kv_value_at[l->kv_tokens] + 12 + 8 + strlen("<unk>");
    patch_u64(b, second, UINT64_MAX - 3);
}
static void m_arr_count(gb *b, const layout *l) { patch_u64(b, l->kv_value_at[l->kv_scores] + 4, 1ull << 61); }
static void m_vtype(gb *b, const layout *l) { patch_u32(b, l->kv_type_at[l->kv_u32], 13); }
static void m_nested(gb *b, const layout *l) { patch_u32(b, l->kv_value_at[l->kv_scores], VT_ARR); }
static void m_align48(gb *b, const layout *l) { patch_u32(b, l->kv_value_at[l->kv_align], 48); }
static void m_align0(gb *b, const layout *l) { patch_u32(b, l->kv_value_at[l->kv_align], 0); }
static void m_align_type(gb *b, const layout *l) { patch_u32(b, l->kv_type_at[l->kv_align], VT_I32); }
static void m_dup_key(gb *b, const layout *l) { b->p[l->kv_at[l->kv_i8] + 8 + 5] = 'u'; } /* test.i8 -> test.u8 */
static void m_dup_tensor(gb *b, const layout *l) { b->p[l->t_at[1] + 8] = 'a'; }
static void m_dims0(gb *b, const layout *l) { patch_u32(b, l->t_ndims_at[0], 0); }
static void m_dims5(gb *b, const layout *l) { patch_u32(b, l->t_ndims_at[0], 5); }
static void m_dim_zero(gb *b, const layout *l) { patch_u64(b, l->t_ne_at[0] + 8, 0); }
static void m_dim_negative(gb *b, const layout *l) { patch_u64(b, l->t_ne_at[0] + 8, (uint64_t)-3); }
static void m_dim_overflow(gb *b, const layout *l) {
    patch_u64(b, l->t_ne_at[0], 1ull << 40);
    patch_u64(b, l->t_ne_at[0] + 8, 1ull << 40);
}
static void m_size_overflow(gb *b, const layout *l) {
    patch_u64(b, l->t_ne_at[0], 1ull << 61);
    patch_u64(b, l->t_ne_at[0] + 8, 2);
}
static void m_type4(gb *b, const layout *l) { patch_u32(b, l->t_type_at[1], 4); }
static void m_type_unsupported(gb *b, const layout *l) { patch_u32(b, l->t_type_at[0], 26); } /* i32: same size as f32 */
static void m_block(gb *b, const layout *l) { patch_u64(b, l->t_ne_at[1], 48); }
static void m_outside(gb *b, const layout *l) { patch_u64(b, l->t_offset_at[2], 1ull << 20); }
static void m_misaligned(gb *b, const layout *l) { patch_u64(b, l->t_offset_at[2], l->t_offset[2] + 8); }
static void m_overlap(gb *b, const layout *l) { patch_u64(b, l->t_offset_at[1], 0); }

#define V3 {3, 0, 40}
#define V3_ALIGN64 {3, 64, 40}

static const corpus_case k_cases[] = {
    {"valid_v3", NULL, V3, NULL},
    {"valid_v2_align64", NULL, {2, 64, 300}, NULL},
    {"valid_unsupported_type", NULL, V3, m_type_unsupported},
    {NULL, "file too small for a GGUF header", V3, m_cut_header},
    {"truncated_kv_key", "truncated file in kv 3 key", V3, m_cut_kv_key},
    {NULL, "truncated file in kv 5 \"test.u32\" value", V3, m_cut_kv_value},
    {NULL, "truncated file in tensor info 1", V3, m_cut_tensor_info},
    {"truncated_data", "truncated file in tensor data", V3, m_cut_tensor_data},
    {NULL, "bad magic \"GGML\"", V3, m_magic},
    {NULL, "unsupported GGUF version 1 ", V3, m_version1},
    {NULL, "unsupported GGUF version 7 ", V3, m_version7},
    {NULL, "big-endian", V3, m_big_endian},
    {NULL, "absurd counts", V3, m_many_kv},
    {NULL, "absurd counts", V3, m_many_tensors},
    {NULL, "kv 2: key length 1099511627776 goes beyond the end of the file", V3, m_key_len},
    {NULL, "\"general.architecture\": string length", V3, m_str_len},
    {"bad_string_len", "string 1 length 18446744073709551612 goes beyond the end", V3, m_arr_str_len},
    {NULL, "truncated file in kv 14 \"tokenizer.ggml.scores\" value", V3, m_arr_count},
    {"unknown_vtype", "unknown metadata value type 13", V3, m_vtype},
    {"nested_array", "arrays of arrays are not supported", V3, m_nested},
    {"bad_alignment", "invalid alignment 48", V3_ALIGN64, m_align48},
    {NULL, "invalid alignment 0", V3_ALIGN64, m_align0},
    {NULL, "invalid alignment: general.alignment has type i32", V3_ALIGN64, m_align_type},
    {"duplicate_key", "duplicate key \"test.u8\" (kv 1 and kv 2)", V3, m_dup_key},
    {NULL, "duplicate tensor name \"a\"", V3, m_dup_tensor},
    {NULL, "tensor 0 \"a\": 0 dimensions", V3, m_dims0},
    {NULL, "tensor 0 \"a\": 5 dimensions", V3, m_dims5},
    {NULL, "dimension 1 is 0 (must be positive)", V3, m_dim_zero},
    {NULL, "dimension 1 is -3 (must be positive)", V3, m_dim_negative},
    {NULL, "element count overflows", V3, m_dim_overflow},
    {NULL, "data size overflows", V3, m_size_overflow},
    {"unknown_tensor_type", "unknown tensor type id 4", V3, m_type4},
    {NULL, "ne[0] = 48 is not a multiple of the q4_0 block size 32", V3, m_block},
    {NULL, "tensor 2 \"c\": data offset 1048576 is outside the file", V3, m_outside},
    {"misaligned", "offset 136 is misaligned", V3, m_misaligned},
    {"overlap", "overlapping tensors \"a\" and \"b\"", V3, m_overlap},
};

#define N_CASES (sizeof k_cases / sizeof k_cases[0])

/* Encodes case i into b (whose buffer is reused); returns the layout used. */
static layout build_case(gb *b, size_t i) {
    layout l;
    build_base(b, &l, &k_cases[i].base);
    if (k_cases[i].mutate) k_cases[i].mutate(b, &l);
    return l;
}

#ifndef GGUF_CORPUS_NO_MAIN
int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    gb b = {0};
    for (size_t i = 0; i < N_CASES; i++) {
        if (!k_cases[i].seed) continue;
        build_case(&b, i);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], k_cases[i].seed);
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(b.p, 1, b.len, fp) != b.len || fclose(fp) != 0) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
    }
    free(b.p);
    return 0;
}
#endif
