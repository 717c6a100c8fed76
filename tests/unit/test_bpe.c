/* Byte-level BPE tests: Unicode class tables (a few code points per class),
 * UTF-8 decoding of ill-formed input, GPT-2's byte alphabet, the Llama 3
 * pre-tokenizer split (expected pieces from Hugging Face tokenizers' Split with
 * the Llama 3 regex), merges by rank on a hand-made vocabulary, special tokens,
 * the end-of-generation set, exact round trips of random bytes, and GGUF
 * loading through the public API. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab_load.h"
#include "wgllm.h"

/* ---- Unicode tables ---- */

static void test_unicode_classes(void) {
    CHECK(strcmp(wg_unicode_version, "16.0.0") == 0);
    for (size_t i = 0; i < wg_unicode_n_ranges; i++) {
        CHECK_MSG(wg_unicode_ranges[i].lo <= wg_unicode_ranges[i].hi, "range %zu inverted", i);
        if (i > 0) CHECK_MSG(wg_unicode_ranges[i - 1].hi < wg_unicode_ranges[i].lo, "range %zu not sorted", i);
    }
    static const uint32_t letters[] = {'A', 'z', 0xE9, 0x17F, 0x3A9, 0x416, 0x5D0, 0x627, 0x915, 0xE01, 0x3042,
                                       0x4E2D, 0xAC00, 0x1D400, 0x20000, 0x11F04 /* Kawi, 15.0 */,
                                       0x105C0 /* Todhri, 16.0 */, 0x2B0 /* Lm */, 0x1C5 /* Lt */};
    static const uint32_t numbers[] = {'0', '9', 0x663, 0x967, 0xFF15, 0xB2, 0xBD, 0x216B, 0x3007, 0x1D7CE,
                                       0x11F50 /* Kawi digit, 15.0 */};
    static const uint32_t spaces[] = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A,
                                      0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    static const uint32_t others[] = {'!', '\'', 0x00, 0x1C, 0x1F, 0x7F, 0x200B /* ZWSP is Cf */, 0xFEFF, 0x301,
                                      0x180E, 0x1F600, 0xD800, 0xE000, 0x10FFFF, 0x110000, 0xFFFFFFFF};
    for (size_t i = 0; i < sizeof letters / sizeof letters[0]; i++)
        CHECK_MSG(wg_unicode_class(letters[i]) == WG_UC_LETTER, "U+%04X not a letter", (unsigned)letters[i]);
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        CHECK_MSG(wg_unicode_class(numbers[i]) == WG_UC_NUMBER, "U+%04X not a number", (unsigned)numbers[i]);
    for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++)
        CHECK_MSG(wg_unicode_class(spaces[i]) == WG_UC_SPACE, "U+%04X not a space", (unsigned)spaces[i]);
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        CHECK_MSG(wg_unicode_class(others[i]) == WG_UC_OTHER, "U+%04X not other", (unsigned)others[i]);
}

static void test_utf8_decode(void) {
    uint32_t cp;
    CHECK(wg_utf8_decode((const unsigned char *)"\xE2\x82\xAC", 3, &cp) == 3 && cp == 0x20AC);
    CHECK(wg_utf8_decode((const unsigned char *)"\xF0\x9F\x98\x80", 4, &cp) == 4 && cp == 0x1F600);
    static const char *const bad[] = {"\x80", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80",
                                      "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\xE2\x82", "\xC3("};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i]);
        int len = wg_utf8_decode((const unsigned char *)bad[i], n, &cp);
        CHECK_MSG(len == 1 && cp == (WG_UTF8_INVALID | (unsigned char)bad[i][0]), "case %zu", i);
    }
    char buf[4];
    CHECK(wg_utf8_encode(0x10FFFF, buf) == 4 && memcmp(buf, "\xF4\x8F\xBF\xBF", 4) == 0);
}

static void test_byte_alphabet(void) {
    bool seen[0x200] = {false};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = wg_bpe_byte_to_cp((unsigned char)b);
        CHECK_MSG(cp < 0x200 && !seen[cp] && wg_bpe_cp_to_byte(cp) == b, "byte %d", b);
        if (cp < 0x200) seen[cp] = true;
    }
    CHECK(wg_bpe_byte_to_cp(' ') == 0x120 && wg_bpe_byte_to_cp('\n') == 0x10A && wg_bpe_byte_to_cp(0) == 0x100);
    CHECK(wg_bpe_byte_to_cp(0x7F) == 0x121 && wg_bpe_byte_to_cp(0xA0) == 0x142 && wg_bpe_byte_to_cp(0xAD) == 0x143);
    CHECK(wg_bpe_byte_to_cp('a') == 'a' && wg_bpe_byte_to_cp(0xFF) == 0xFF);
    CHECK(wg_bpe_cp_to_byte(0x144) == -1 && wg_bpe_cp_to_byte(0xAD) == -1 && wg_bpe_cp_to_byte(' ') == -1);
    char out[16];
    size_t n = wg_bpe_piece_bytes("\xC4\xA0the\xC4\x8A", out); /* "Ġthe" + "Ċ" */
    CHECK(n == 5 && memcmp(out, " the\n", 5) == 0);
    n = wg_bpe_piece_bytes("\xE2\x82\xAC", out); /* outside the alphabet: kept as is */
    CHECK(n == 3 && memcmp(out, "\xE2\x82\xAC", 3) == 0);
}

/* ---- pre-tokenizer ---- */

typedef struct split_case {
    const char *text;
    const char *pieces[8];
    int n;
} split_case;

/* Expected pieces produced by tokenizers' pre_tokenizers.Split(Llama 3 regex, "isolated"). */
static const split_case k_splits[] = {
    {"Hello world", {"Hello", " world"}, 2},
    {"it's", {"it", "'s"}, 2},
    {"IT'S 'LL 'Ve", {"IT", "'S", " '", "LL", " '", "Ve"}, 6},
    {"it'\xC5\xBFt", {"it", "'\xC5\xBF", "t"}, 3}, /* U+017F folds to s */
    {"'sup", {"'s", "up"}, 2},
    {"1234567", {"123", "456", "7"}, 3},
    {"x2y33z444", {"x", "2", "y", "33", "z", "444"}, 6},
    {"a  b", {"a", " ", " b"}, 3},
    {"a   b  ", {"a", "  ", " b", "  "}, 4},
    {"a \n\n b", {"a", " \n\n", " b"}, 3},
    {"a\r\n\r\nb", {"a", "\r\n\r\n", "b"}, 3},
    {"  \t\n x", {"  \t\n", " x"}, 2},
    {"!!!\n\nx", {"!!!\n\n", "x"}, 2},
    {" !?", {" !?"}, 1},
    {"hello,world", {"hello", ",world"}, 2},
    {"\xC2\xA0\xC2\xA0" "b", {"\xC2\xA0", "\xC2\xA0" "b"}, 2},
    {"\xE3\x80\x80x", {"\xE3\x80\x80x"}, 1},
    {"caf\xC3\xA9", {"caf\xC3\xA9"}, 1},
    {"e\xCC\x81", {"e", "\xCC\x81"}, 2},
    {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"}, 1},
    {"\xF0\x9F\x98\x80\xF0\x9F\x98\x80", {"\xF0\x9F\x98\x80\xF0\x9F\x98\x80"}, 1},
    {"\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6", {"\xD9\xA3\xD9\xA4\xD9\xA5", "\xD9\xA6"}, 2},
    {"\xE2\x85\xAB" "1", {"\xE2\x85\xAB" "1"}, 1},
    {"end  ", {"end", "  "}, 2},
    {"\ttab", {"\ttab"}, 1},
    {"a\x0b" "b", {"a", "\x0b" "b"}, 2},
    {"x\xE2\x80\xA8y", {"x", "\xE2\x80\xA8y"}, 2},
    /* Ill-formed bytes split like U+FFFD (punctuation) but keep their value. */
    {"a\xFF" "b", {"a", "\xFF" "b"}, 2},
    {"x \xC3\xC3!\n", {"x", " \xC3\xC3!\n"}, 2},
    {"12\x80" "3", {"12", "\x80", "3"}, 3},
};

typedef struct split_out {
    const char *text;
    char pieces[8][64];
    int n;
    bool overflow;
} split_out;

static bool collect(void *ctx, size_t start, size_t len) {
    split_out *o = ctx;
    if (o->n >= 8 || len >= 64) {
        o->overflow = true;
        return true;
    }
    memcpy(o->pieces[o->n], o->text + start, len);
    o->pieces[o->n][len] = '\0';
    o->n++;
    return true;
}

static void test_pretokenizer(void) {
    for (size_t i = 0; i < sizeof k_splits / sizeof k_splits[0]; i++) {
        const split_case *c = &k_splits[i];
        split_out o = {c->text, {{0}}, 0, false};
        CHECK(wg_pretok_llama3(c->text, strlen(c->text), collect, &o));
        bool same = !o.overflow && o.n == c->n;
        for (int k = 0; same && k < c->n; k++) same = strcmp(o.pieces[k], c->pieces[k]) == 0;
        CHECK_MSG(same, "split case %zu: got %d pieces, first '%s'", i, o.n, o.n ? o.pieces[0] : "");
    }
}

/* ---- a hand-made byte-level vocabulary ---- */

enum { N_BYTES = 256 };
static const char *const k_words[] = {"he", "\xC4\xA0t", "\xC4\xA0the", "ll", "aa", "bc", "ab", "xyz"};
static const char *const k_merges[] = {"h e", "\xC4\xA0 t", "\xC4\xA0t he", "l l", "a a", "b c", "a b",
                                       "no such", "a"};
static const char *const k_specials[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<tool>"};
#define N_WORDS (int32_t)(sizeof k_words / sizeof k_words[0])
#define ID_WORD(k) (N_BYTES + (k))
#define ID_SPECIAL(k) (N_BYTES + N_WORDS + (k))

static char *dup_str(const char *s) {
    char *p = malloc(strlen(s) + 1);
    if (p) strcpy(p, s);
    return p;
}

/* Byte b's token is id b (the alphabet in byte order). */
static bool make_vocab(wg_vocab *v) {
    if (!wg_vocab_alloc(v, N_BYTES + N_WORDS + 4)) return false;
    v->kind = WG_VOCAB_BPE;
    v->add_space_prefix = false;
    for (int32_t i = 0; i < v->n; i++) {
        char buf[8];
        const char *p = buf;
        if (i < N_BYTES) buf[wg_utf8_encode(wg_bpe_byte_to_cp((unsigned char)i), buf)] = '\0';
        else if (i < N_BYTES + N_WORDS) p = k_words[i - N_BYTES];
        else p = k_specials[i - N_BYTES - N_WORDS];
        if (!(v->pieces[i] = dup_str(p))) return false;
        if (i >= N_BYTES + N_WORDS) v->types[i] = i == ID_SPECIAL(3) ? WG_TOKEN_USER_DEFINED : WG_TOKEN_CONTROL;
    }
    int32_t nm = (int32_t)(sizeof k_merges / sizeof k_merges[0]);
    if (!wg_vocab_alloc_merges(v, nm)) return false;
    for (int32_t i = 0; i < nm; i++)
        if (!(v->merges[i] = dup_str(k_merges[i]))) return false;
    v->bos = ID_SPECIAL(0);
    v->eos = ID_SPECIAL(1);
    return true;
}

static bool ids_are(const wg_tokenizer *t, const char *text, bool special, const int32_t *want, int n) {
    int32_t got[64];
    int64_t k = wg_tokenize_ex(t, text, strlen(text), false, special, got, 64);
    bool ok = k == n;
    for (int i = 0; ok && i < n; i++) ok = got[i] == want[i];
    if (!ok) {
        fprintf(stderr, "  '%s': got", text);
        for (int64_t i = 0; i < k && i < 64; i++) fprintf(stderr, " %d", (int)got[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint32_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static void test_merges_and_specials(void) {
    wg_vocab v;
    CHECK(make_vocab(&v));
    char err[256] = "";
    wg_tokenizer *t = wg_tokenizer_from_vocab(&v, err, sizeof err);
    wg_vocab_clear(&v);
    CHECK_MSG(t != NULL, "%s", err);
    if (!t) return;
    const int32_t SP = ' ';
    CHECK(ids_are(t, "the", false, (const int32_t[]){'t', ID_WORD(0)}, 2));
    CHECK(ids_are(t, " the", false, (const int32_t[]){ID_WORD(2)}, 1));
    CHECK(ids_are(t, " hello", false, (const int32_t[]){SP, ID_WORD(0), ID_WORD(3), 'o'}, 4));
    CHECK(ids_are(t, "aaa", false, (const int32_t[]){ID_WORD(4), 'a'}, 2));           /* leftmost on ties */
    CHECK(ids_are(t, "abc", false, (const int32_t[]){'a', ID_WORD(5)}, 2));           /* lower rank first */
    CHECK(ids_are(t, "xyz", false, (const int32_t[]){ID_WORD(7)}, 1));               /* whole word: no merges needed */
    CHECK(ids_are(t, "xyzx", false, (const int32_t[]){'x', 'y', 'z', 'x'}, 4));
    CHECK(ids_are(t, "a\n", false, (const int32_t[]){'a', '\n'}, 2));
    /* Control tokens only on request; user-defined ones always. */
    CHECK(ids_are(t, "a<|eot_id|>b", true, (const int32_t[]){'a', ID_SPECIAL(2), 'b'}, 3));
    CHECK(ids_are(t, "<|eot_id|><|eot_id|>", true, (const int32_t[]){ID_SPECIAL(2), ID_SPECIAL(2)}, 2));
    CHECK(ids_are(t, "a<|eot_id|>", false, (const int32_t[]){'a', '<', '|', 'e', 'o', 't', '_', 'i', 'd', '|', '>'}, 11));
    CHECK(ids_are(t, "x<tool>y", false, (const int32_t[]){'x', ID_SPECIAL(3), 'y'}, 3));
    CHECK(ids_are(t, " <|eot_id", true, (const int32_t[]){SP, '<', '|', 'e', 'o', 't', '_', 'i', 'd'}, 9));
    int32_t ids[4];
    CHECK(wg_tokenize_ex(t, "ab", 2, true, false, ids, 4) == 2 && ids[0] == ID_SPECIAL(0) && ids[1] == ID_WORD(6));
    CHECK(wg_tokenize_ex(t, "abc", 3, true, false, ids, 1) == 3); /* count beyond max_out */

    /* Decoding: control tokens print nothing, user-defined ones their text. */
    const int32_t seq[] = {ID_SPECIAL(0), 'h', ID_WORD(0), ID_SPECIAL(2), ID_SPECIAL(3), ID_WORD(2), 0xFF};
    char out[64];
    size_t n = wg_detokenize(t, seq, 7, out, sizeof out);
    CHECK(n == 14 && memcmp(out, "hhe<tool> the\xFF", 14) == 0);

    /* End of generation: eos and the Llama 3 end tokens by name, nothing else. */
    CHECK(wg_tokenizer_is_eog(t, ID_SPECIAL(1)) && wg_tokenizer_is_eog(t, ID_SPECIAL(2)));
    CHECK(!wg_tokenizer_is_eog(t, ID_SPECIAL(0)) && !wg_tokenizer_is_eog(t, 'a') && !wg_tokenizer_is_eog(t, -1));

    /* Random bytes (often ill-formed UTF-8, with specials sprinkled in) round trip
     * exactly without parse_special; the stream releases the sanitized text. */
    static const char *const frags[] = {"the", " ", "\n", "\r\n", "'s", "123", "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x98\x80",
                                        "<|eot_id|>", "<tool>", "\xFF", "\x80", "\xE2\x82", " he", "ll", "aaa", "abc"};
    int bad = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char text[256];
        size_t len = 0;
        int parts = 1 + (int)(rnd() % 20);
        for (int p = 0; p < parts; p++) {
            if (rnd() % 3 == 0) {
                text[len++] = (char)(rnd() & 0xFF);
            } else {
                const char *f = frags[rnd() % (sizeof frags / sizeof frags[0])];
                size_t fl = strlen(f);
                memcpy(text + len, f, fl);
                len += fl;
            }
        }
        int32_t tok[512];
        int64_t k = wg_tokenize_ex(t, text, len, false, false, tok, 512);
        char dec[600];
        size_t dl = k >= 0 && k <= 512 ? wg_detokenize(t, tok, (size_t)k, dec, sizeof dec) : 0;
        if (k < 0 || dl != len || memcmp(dec, text, len) != 0) bad++;
        wg_detok_stream s;
        wg_detok_stream_init(&s);
        char stream[2048], piece[256];
        size_t sl = 0;
        for (int64_t i = 0; i < k && i < 512; i++) {
            size_t pl = wg_detok_stream_push(t, &s, tok[i], piece, sizeof piece);
            memcpy(stream + sl, piece, pl);
            sl += pl;
        }
        sl += wg_detok_stream_flush(&s, stream + sl, sizeof stream - sl);
        char clean[2048];
        size_t cl = wg_utf8_sanitize(text, len, clean, sizeof clean);
        if (cl != sl || memcmp(clean, stream, sl) != 0) bad++;
        /* With specials parsed, the decode drops the control tokens only. */
        k = wg_tokenize_ex(t, text, len, false, true, tok, 512);
        if (k < 0 || k > 512) bad++;
    }
    CHECK_MSG(bad == 0, "%d of 3000 random strings failed to round trip", bad);
    wg_tokenizer_free(t);
}

/* SentencePiece vocabularies parse specials too, with the dummy prefix again
 * after each special token (as llama.cpp); without parsing nothing changes. */
static void test_spm_specials(void) {
    static const char *const pieces[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a", "a", "\xE2\x96\x81"};
    static const int32_t types[] = {WG_TOKEN_UNKNOWN, WG_TOKEN_CONTROL, WG_TOKEN_CONTROL, WG_TOKEN_NORMAL,
                                    WG_TOKEN_NORMAL, WG_TOKEN_NORMAL};
    wg_vocab v;
    CHECK(wg_vocab_alloc(&v, 6));
    for (int32_t i = 0; i < 6; i++) {
        v.pieces[i] = dup_str(pieces[i]);
        v.types[i] = types[i];
    }
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    wg_tokenizer *t = wg_tokenizer_from_vocab(&v, NULL, 0);
    wg_vocab_clear(&v);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(ids_are(t, "a</s>a", true, (const int32_t[]){3, 2, 3}, 3));
    CHECK(ids_are(t, "a</s>a", false, (const int32_t[]){3, 0, 0, 0, 0, 4}, 6));
    CHECK(wg_tokenizer_is_eog(t, 2) && !wg_tokenizer_is_eog(t, 1));
    wg_tokenizer_free(t);
}

/* ---- GGUF loading through the public API ---- */

/* add_bos/add_eos: 0 or 1 writes tokenizer.ggml.add_bos_token/add_eos_token, -1 leaves it out. */
static bool write_gguf_flags(const char *path, const char *pre, bool with_merges, int add_bos, int add_eos) {
    wg_vocab v;
    if (!make_vocab(&v)) return false;
    gguf_writer *w = gguf_writer_create();
    bool ok = w && gguf_writer_set_str(w, "general.architecture", "llama") &&
              gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2") &&
              (!pre || gguf_writer_set_str(w, "tokenizer.ggml.pre", pre)) &&
              gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.pieces, (size_t)v.n) &&
              gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, v.types, (size_t)v.n) &&
              (!with_merges || gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges,
                                                       (size_t)v.n_merges)) &&
              gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)ID_SPECIAL(0)) &&
              gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)ID_SPECIAL(1)) &&
              gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)ID_WORD(7)) &&
              (add_bos < 0 || gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos)) &&
              (add_eos < 0 || gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", add_eos)) &&
              gguf_writer_begin(w, path) && gguf_writer_finish(w);
    gguf_writer_free(w);
    wg_vocab_clear(&v);
    return ok;
}

static bool write_gguf(const char *path, const char *pre, bool with_merges) {
    return write_gguf_flags(path, pre, with_merges, -1, -1);
}

/* Files without tokenizer.ggml.add_bos_token/add_eos_token take llama.cpp's defaults, which
 * depend on the pre-tokenizer (llama.cpp's converter writes neither key for Qwen2, and
 * llama.cpp then adds no bos); keys present always win. */
static void test_gguf_add_bos_defaults(const char *path) {
    static const struct {
        const char *pre;
        int add_bos, add_eos; /* the keys written, -1: none */
        bool want_bos, want_eos;
    } cases[] = {
        {"llama-bpe", -1, -1, true, false},        {"llama3", -1, -1, true, false},
        {"llama-v3", -1, -1, true, false},         {"qwen2", -1, -1, false, false},
        {"deepseek-r1-qwen", -1, -1, false, false}, {"qwen2", 1, -1, true, false},
        {"qwen2", -1, 1, false, true},             {"llama-bpe", 0, 1, false, true},
        {"qwen2", 0, 0, false, false},
    };
    wgllm_model_params mp = wgllm_model_default_params();
    mp.vocab_only = true;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        wgllm_model *m = NULL;
        CHECK(write_gguf_flags(path, cases[i].pre, true, cases[i].add_bos, cases[i].add_eos));
        CHECK_MSG(wgllm_model_load(path, &mp, &m, err, sizeof err) == WGLLM_OK, "%s", err);
        if (!m) continue;
        CHECK_MSG(wgllm_add_bos_default(m) == cases[i].want_bos, "case %zu (%s)", i, cases[i].pre);
        wgllm_token ids[8];
        int64_t n = wgllm_tokenize(m, "ab", 2, wgllm_add_bos_default(m), ids, 8);
        CHECK_MSG(n >= 1 && (ids[0] == ID_SPECIAL(0)) == cases[i].want_bos, "case %zu: %lld ids", i, (long long)n);
        /* add_eos has no public getter: the vocabulary the loader built states it */
        wgllm_model_free(m);
        gguf_file *f = gguf_open(path, err, sizeof err);
        CHECK_MSG(f != NULL, "%s", err);
        if (!f) continue;
        wg_vocab v;
        CHECK_MSG(wg_vocab_from_gguf(f, &v, err, sizeof err), "%s", err);
        CHECK_MSG(v.add_bos == cases[i].want_bos && v.add_eos == cases[i].want_eos, "case %zu (%s)", i, cases[i].pre);
        wg_vocab_clear(&v);
        gguf_close(f);
    }
}

static void test_gguf_load(void) {
    char dir[] = "test_bpe_XXXXXX", path[64], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/vocab.gguf", dir);
    CHECK(write_gguf(path, "llama-bpe", true));
    wgllm_model_params mp = wgllm_model_default_params();
    mp.vocab_only = true;
    wgllm_model *m = NULL;
    CHECK_MSG(wgllm_model_load(path, &mp, &m, err, sizeof err) == WGLLM_OK, "%s", err);
    if (m) {
        CHECK(wgllm_token_bos(m) == ID_SPECIAL(0) && wgllm_token_eos(m) == ID_SPECIAL(1));
        CHECK(wgllm_add_bos_default(m)); /* Llama 3's default */
        CHECK(wgllm_token_is_eog(m, ID_SPECIAL(1)) && wgllm_token_is_eog(m, ID_SPECIAL(2)));
        CHECK(wgllm_token_is_eog(m, ID_WORD(7))); /* tokenizer.ggml.eot_token_id */
        CHECK(!wgllm_token_is_eog(m, ID_SPECIAL(0)) && !wgllm_token_is_eog(m, 'a'));
        wgllm_token ids[8];
        CHECK(wgllm_tokenize_special(m, " the<|eot_id|>", 14, true, true, ids, 8) == 3 && ids[0] == ID_SPECIAL(0) &&
              ids[1] == ID_WORD(2) && ids[2] == ID_SPECIAL(2));
        CHECK(wgllm_tokenize(m, " the<|eot_id|>", 14, false, ids, 8) == 11);
        wgllm_model_free(m);
        m = NULL;
    }
    test_gguf_add_bos_defaults(path);
    CHECK(write_gguf(path, "gpt-4o", true));
    CHECK(wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK && strstr(err, "gpt-4o") &&
          strstr(err, "tokenizer.ggml.pre"));
    wgllm_model_free(m);
    m = NULL;
    CHECK(write_gguf(path, NULL, true));
    CHECK(wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK && strstr(err, "pre-tokenizer"));
    wgllm_model_free(m);
    m = NULL;
    CHECK(write_gguf(path, "llama-bpe", false));
    CHECK(wgllm_model_load(path, &mp, &m, err, sizeof err) != WGLLM_OK && strstr(err, "tokenizer.ggml.merges"));
    wgllm_model_free(m);
    remove(path);
    rmdir(dir);
}

int main(void) {
    test_unicode_classes();
    test_utf8_decode();
    test_byte_alphabet();
    test_pretokenizer();
    test_merges_and_specials();
    test_spm_specials();
    test_gguf_load();
    CHECK_DONE();
}
