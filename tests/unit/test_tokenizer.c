/* Tokenizer tests: SentencePiece ids for the Llama 2 model (golden JSON made by
 * sentencepiece), llama2.c prompt ids (golden .ids.txt made by run.c), merge
 * rules on hand-made vocabularies, exact decode(encode(x)) == x on thousands of
 * random strings, streaming detokenization, and hostile tokenizer files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_load.h"

/* ---- helpers ---- */

static char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = '\0';
    if (size) *size = len;
    return buf;
}

static void shared_path(char *buf, size_t cap, const char *rel) {
    snprintf(buf, cap, "%s/%s", check_shared_dir(), rel);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { /* xorshift64*: deterministic across platforms */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

/* Independent UTF-8 validity check (decodes code points and checks ranges). */
static int valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

static size_t put_cp(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static int32_t *encode(const wg_tokenizer *t, const char *s, size_t len, bool bos, int64_t *n) {
    int64_t cnt = wg_tokenize(t, s, len, bos, NULL, 0);
    int32_t *ids = malloc(((size_t)(cnt > 0 ? cnt : 0) + 1) * sizeof *ids);
    int64_t again = wg_tokenize(t, s, len, bos, ids, cnt);
    *n = cnt == again ? cnt : -1;
    return ids;
}

static char *decode(const wg_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t need = wg_detokenize(t, ids, n, NULL, 0);
    char *out = malloc(need + 1);
    *len = wg_detokenize(t, ids, n, out, need + 1);
    return out;
}

/* Checks decode(encode(s)) == s, and that streaming gives the same text. */
static int roundtrip_ok(const wg_tokenizer *t, const char *s, size_t len) {
    int64_t n;
    int32_t *ids = encode(t, s, len, true, &n);
    size_t dlen;
    char *d = decode(t, ids, n < 0 ? 0 : (size_t)n, &dlen);
    int ok = n >= 0 && dlen == len && memcmp(d, s, len) == 0;
    /* Streaming: every chunk valid UTF-8; concatenation = sanitized full text. */
    size_t cap = wg_detok_stream_max_out(t);
    char *chunk = malloc(cap);
    char *streamed = malloc(3 * len + 16);
    size_t slen = 0;
    wg_detok_stream st;
    wg_detok_stream_init(&st);
    for (int64_t i = 0; i < n && ok; i++) {
        size_t c = wg_detok_stream_push(t, &st, ids[i], chunk, cap);
        if (!valid_utf8(chunk, c) || chunk[c] != '\0') ok = 0;
        memcpy(streamed + slen, chunk, c);
        slen += c;
    }
    size_t c = wg_detok_stream_flush(&st, chunk, cap);
    memcpy(streamed + slen, chunk, c);
    slen += c;
    ok = ok && valid_utf8(chunk, c);
    if (valid_utf8(s, len)) {
        ok = ok && slen == len && memcmp(streamed, s, len) == 0;
    } else {
        char *san = malloc(3 * len + 16);
        size_t sl = wg_utf8_sanitize(s, len, san, 3 * len + 16);
        ok = ok && sl == slen && memcmp(san, streamed, sl) == 0 && valid_utf8(san, sl);
        free(san);
    }
    free(chunk);
    free(streamed);
    free(ids);
    free(d);
    return ok;
}

/* ---- a tiny JSON reader for llama2_tokenizer_cases.json ---- */

typedef struct jcur {
    const char *p, *end;
    int bad;
} jcur;

static void jws(jcur *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static int jeat(jcur *j, char c) {
    jws(j);
    if (j->p < j->end && *j->p == c) { j->p++; return 1; }
    return 0;
}

static unsigned jhex4(jcur *j) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = j->p < j->end ? *j->p++ : 0;
        v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : (j->bad = 1, 0));
    }
    return v;
}

/* Parses a string into a malloc'd buffer (len in *len). */
static char *jstring(jcur *j, size_t *len) {
    if (!jeat(j, '"')) { j->bad = 1; return NULL; }
    char *out = malloc((size_t)(j->end - j->p) + 1);
    size_t w = 0;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c != '\\') { out[w++] = c; continue; }
        c = j->p < j->end ? *j->p++ : 0;
        switch (c) {
        case 'n': out[w++] = '\n'; break;
        case 't': out[w++] = '\t'; break;
        case 'r': out[w++] = '\r'; break;
        case 'b': out[w++] = '\b'; break;
        case 'f': out[w++] = '\f'; break;
        case '/': case '\\': case '"': out[w++] = c; break;
        case 'u': {
            uint32_t cp = jhex4(j);
            if (cp >= 0xD800 && cp < 0xDC00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                j->p += 2;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (jhex4(j) - 0xDC00);
            }
            w += put_cp(out + w, cp);
            break;
        }
        default: j->bad = 1;
        }
    }
    if (!jeat(j, '"')) j->bad = 1;
    out[w] = '\0';
    *len = w;
    return out;
}

static void jskip(jcur *j) {
    jws(j);
    if (j->p >= j->end) { j->bad = 1; return; }
    if (*j->p == '"') { size_t l; free(jstring(j, &l)); return; }
    if (*j->p == '[' || *j->p == '{') {
        char close = *j->p == '[' ? ']' : '}';
        j->p++;
        if (jeat(j, close)) return;
        do {
            if (close == '}') { size_t l; free(jstring(j, &l)); if (!jeat(j, ':')) j->bad = 1; }
            jskip(j);
        } while (!j->bad && jeat(j, ','));
        if (!jeat(j, close)) j->bad = 1;
        return;
    }
    while (j->p < j->end && *j->p != ',' && *j->p != ']' && *j->p != '}') j->p++;
}

typedef struct tok_case {
    char *text, *decoded;
    size_t text_len, decoded_len;
    int32_t ids[128];
    int n_ids;
} tok_case;

static int load_cases(const char *json, size_t len, tok_case *cases, int max_cases) {
    jcur j = {json, json + len, 0};
    int n = 0;
    if (!jeat(&j, '{')) return -1;
    do {
        size_t kl;
        char *key = jstring(&j, &kl);
        if (!jeat(&j, ':')) j.bad = 1;
        if (key && strcmp(key, "cases") == 0 && jeat(&j, '[')) {
            do {
                if (!jeat(&j, '{') || n >= max_cases) { j.bad = 1; break; }
                tok_case *c = &cases[n++];
                memset(c, 0, sizeof *c);
                c->n_ids = -1;
                do {
                    char *k2 = jstring(&j, &kl);
                    if (!jeat(&j, ':')) j.bad = 1;
                    if (k2 && strcmp(k2, "text") == 0) c->text = jstring(&j, &c->text_len);
                    else if (k2 && strcmp(k2, "decoded") == 0) c->decoded = jstring(&j, &c->decoded_len);
                    else if (k2 && strcmp(k2, "ids") == 0 && jeat(&j, '[')) {
                        c->n_ids = 0;
                        if (!jeat(&j, ']')) {
                            do {
                                jws(&j);
                                char *e;
                                long v = strtol(j.p, &e, 10);
                                if (e == j.p || c->n_ids >= 128) { j.bad = 1; break; }
                                j.p = e;
                                c->ids[c->n_ids++] = (int32_t)v;
                            } while (jeat(&j, ','));
                            if (!jeat(&j, ']')) j.bad = 1;
                        }
                    } else jskip(&j);
                    free(k2);
                } while (!j.bad && jeat(&j, ','));
                if (!jeat(&j, '}')) j.bad = 1;
            } while (!j.bad && jeat(&j, ','));
            if (!jeat(&j, ']')) j.bad = 1;
        } else {
            jskip(&j);
        }
        free(key);
    } while (!j.bad && jeat(&j, ','));
    if (!jeat(&j, '}')) j.bad = 1;
    return j.bad ? -1 : n;
}

/* ---- Llama 2 SentencePiece model ---- */

static void test_llama2_cases(const wg_tokenizer *t) {
    char path[1024];
    shared_path(path, sizeof path, "golden/llama2_tokenizer_cases.json");
    size_t len;
    char *json = read_all(path, &len);
    CHECK_MSG(json != NULL, "cannot read %s", path);
    if (!json) return;
    static tok_case cases[64];
    int n = load_cases(json, len, cases, 64);
    CHECK_MSG(n == 25, "parsed %d cases", n);
    for (int i = 0; i < n; i++) {
        tok_case *c = &cases[i];
        CHECK(c->text && c->decoded && c->n_ids >= 0);
        if (!c->text || !c->decoded || c->n_ids < 0) continue;
        int32_t ids[256];
        int64_t got = wg_tokenize(t, c->text, c->text_len, false, ids, 256);
        int same = got == c->n_ids && memcmp(ids, c->ids, (size_t)c->n_ids * sizeof(int32_t)) == 0;
        CHECK_MSG(same, "case %d '%s': %lld ids, expected %d", i, c->text, (long long)got, c->n_ids);
        /* With BOS. */
        int64_t got_bos = wg_tokenize(t, c->text, c->text_len, true, ids, 256);
        CHECK(got_bos == c->n_ids + 1 && ids[0] == 1);
        char out[1024];
        size_t dl = wg_detokenize(t, c->ids, (size_t)c->n_ids, out, sizeof out);
        CHECK_MSG(dl == c->decoded_len && memcmp(out, c->decoded, dl) == 0, "case %d decodes to '%s'", i, out);
        CHECK(roundtrip_ok(t, c->text, c->text_len));
        free(c->text);
        free(c->decoded);
    }
    free(json);
}

static void test_llama2_vocab(const wg_tokenizer *t) {
    const wg_vocab *v = wg_tokenizer_vocab(t);
    CHECK(wg_tokenizer_n_vocab(t) == 32000);
    CHECK(wg_tokenizer_bos(t) == 1 && wg_tokenizer_eos(t) == 2 && v->unk == 0 && v->pad == -1);
    CHECK(wg_tokenizer_add_bos(t) && wg_tokenizer_add_space_prefix(t) && !v->add_eos);
    CHECK(strcmp(v->pieces[0], "<unk>") == 0 && v->types[0] == WG_TOKEN_UNKNOWN);
    CHECK(strcmp(v->pieces[1], "<s>") == 0 && v->types[1] == WG_TOKEN_CONTROL);
    CHECK(strcmp(v->pieces[13], "<0x0A>") == 0 && v->types[13] == WG_TOKEN_BYTE);
    CHECK(strcmp(v->pieces[15043], "\xE2\x96\x81Hello") == 0 && v->types[15043] == WG_TOKEN_NORMAL);
    CHECK(v->scores[15043] < 0.0f);

    size_t len;
    const char *p = wg_token_to_bytes(t, 15043, &len);
    CHECK(p && len == 6 && memcmp(p, " Hello", 6) == 0);
    p = wg_token_to_bytes(t, 13, &len);
    CHECK(p && len == 1 && p[0] == '\n');
    p = wg_token_to_bytes(t, 3, &len);
    CHECK(p && len == 1 && p[0] == '\0');
    p = wg_token_to_bytes(t, 1, &len);
    CHECK(p && len == 0);
    CHECK(wg_token_to_bytes(t, 32000, &len) == NULL && wg_token_to_bytes(t, -1, &len) == NULL);

    /* Decoding details: BOS/EOS add nothing; only the first piece loses its space. */
    int32_t ids[] = {1, 15043, 15043, 2};
    char out[64];
    CHECK(wg_detokenize(t, ids, 4, out, sizeof out) == 11 && strcmp(out, "Hello Hello") == 0);
    CHECK(wg_detokenize(t, ids, 4, out, 5) == 11 && strcmp(out, "Hell") == 0); /* cut, terminated */
    int32_t bad[] = {-5, 15043, 99999};
    CHECK(wg_detokenize(t, bad, 3, out, sizeof out) == 5 && strcmp(out, "Hello") == 0);

    /* A U+2581 in the text is read as a space (SentencePiece does the same). */
    int32_t a[8], b[8];
    int64_t na = wg_tokenize(t, "a\xE2\x96\x81" "b", 5, false, a, 8);
    int64_t nb = wg_tokenize(t, "a b", 3, false, b, 8);
    CHECK(na == nb && na > 0 && memcmp(a, b, (size_t)na * sizeof *a) == 0);

    /* Output buffer too small: the full count comes back, the prefix is written. */
    int32_t few[2] = {-7, -7};
    CHECK(wg_tokenize(t, "Hello world", 11, true, few, 1) == 3 && few[0] == 1 && few[1] == -7);
    CHECK(wg_tokenize(t, "", 0, true, few, 2) == 1 && wg_tokenize(t, "", 0, false, few, 2) == 0);
}

/* Thousands of random strings: ASCII, valid UTF-8 of every length, invalid bytes. */
static void test_roundtrip(const wg_tokenizer *t, int iterations) {
    static const uint32_t ranges[][2] = {
        {0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x24F}, {0x300, 0x36F},   /* Latin, combining marks */
        {0x400, 0x4FF}, {0x591, 0x6FF}, {0x900, 0x97F}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, /* CJK */
        {0xAC00, 0xD7A3}, {0xE000, 0xF8FF}, {0xFE00, 0xFFFD}, {0x1F300, 0x1FAFF},  /* emoji */
        {0x10000, 0x10FFFF}, {0x80, 0x7FF}, {0x800, 0xFFFF},
    };
    const int n_ranges = (int)(sizeof ranges / sizeof ranges[0]);
    char s[600];
    int failures = 0;
    for (int it = 0; it < iterations; it++) {
        size_t len = 0, target = rnd() % 120;
        int kind = it % 5;
        while (len < target) {
            uint32_t r = rnd();
            if (kind == 0) { /* ASCII incl. runs of spaces, control chars */
                s[len++] = (r & 7) == 0 ? ' ' : (char)(r % 128);
            } else if (kind == 1 || kind == 2) { /* valid UTF-8 */
                uint32_t lo = ranges[r % n_ranges][0], hi = ranges[r % n_ranges][1];
                uint32_t cp = lo + rnd() % (hi - lo + 1);
                if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0x2581) cp = ' ';
                len += put_cp(s + len, cp);
            } else if (kind == 3) { /* arbitrary bytes */
                s[len++] = (char)(r & 0xFF);
            } else { /* valid text with cut or stray bytes */
                if ((r & 3) == 0) s[len++] = (char)(0x80 + rnd() % 0x80);
                else {
                    char tmp[4];
                    size_t l = put_cp(tmp, 0x80 + rnd() % 0x10000);
                    size_t keep = (r >> 8) % 3 == 0 ? (size_t)(1 + rnd() % l) : l;
                    memcpy(s + len, tmp, keep);
                    len += keep;
                }
            }
        }
        /* No literal U+2581 may sneak in through random bytes. */
        for (size_t i = 0; i + 2 < len; i++)
            if ((unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81) s[i] = 'x';
        if (!roundtrip_ok(t, s, len)) {
            if (failures++ < 5) fprintf(stderr, "round trip failed: iteration %d, %zu bytes\n", it, len);
        }
    }
    CHECK_MSG(failures == 0, "%d of %d random strings did not round-trip", failures, iterations);

    static const char *const fixed[] = {"", " ", "  ", "   \n ", "\n", "\t\t", " \t\n\r\v\f", "a", " a",
                                        "a ", "\xF0\x9F\xA6\x99", "\xE4\xBD\xA0\xE5\xA5\xBD", "e\xCC\x81", "\xC3",
                                        "\x80\x80", "\xF4\x90\x80\x80", "\xED\xA0\x80", "\xC0\xAF", "<s>", "</s>",
                                        "<unk>", "<0x41>", "\xFF\xFE", "x\xE2\x96"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        CHECK_MSG(roundtrip_ok(t, fixed[i], strlen(fixed[i])), "fixed case %zu", i);
    /* Embedded NUL bytes. */
    CHECK(roundtrip_ok(t, "a\0b\0", 4));
}

static void test_long_text(const wg_tokenizer *t) {
    /* 100 KB of prose-like text: exercises the merge queue at scale. */
    static const char *const words[] = {"the", "quick", "brown", "fox", "tunneling", "WebGPU", "naïve",
                                        "日本語", "🦙", "42", "\n", "  ", "Lily", "once", "upon", "a", "time,"};
    size_t cap = 100 * 1024, len = 0;
    char *s = malloc(cap + 64);
    while (len < cap) {
        const char *w = words[rnd() % (sizeof words / sizeof words[0])];
        size_t l = strlen(w);
        memcpy(s + len, w, l);
        len += l;
        s[len++] = ' ';
    }
    CHECK(roundtrip_ok(t, s, len));
    /* One long run of a single character (deep, repeated merges). */
    memset(s, ' ', 5000);
    CHECK(roundtrip_ok(t, s, 5000));
    memset(s, 'a', 5000);
    CHECK(roundtrip_ok(t, s, 5000));
    free(s);
}

/* Unicode Standard, Table 3-8: U+FFFD for each maximal subpart. */
static void test_sanitize_and_stream(const wg_tokenizer *t) {
    static const char in[] = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
    static const char want[] = "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD" "d";
    char out[64];
    size_t n = wg_utf8_sanitize(in, sizeof in - 1, out, sizeof out);
    CHECK(n == sizeof want - 1 && memcmp(out, want, n) == 0);
    /* More maximal subparts: surrogates, overlongs, out of range, truncated at end. */
    CHECK(wg_utf8_sanitize("\xED\xA0\x80", 3, out, sizeof out) == 9);
    CHECK(wg_utf8_sanitize("\xC0\xAF", 2, out, sizeof out) == 6);
    CHECK(wg_utf8_sanitize("\xF4\x90\x80\x80", 4, out, sizeof out) == 12);
    CHECK(wg_utf8_sanitize("\xF0\x9F\xA6", 3, out, sizeof out) == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0);
    CHECK(wg_utf8_sanitize("ok", 2, out, sizeof out) == 2 && strcmp(out, "ok") == 0);

    /* The same bytes streamed as byte tokens (id = byte + 3 in Llama 2), with a
     * leading "▁a" piece. */
    int32_t ids[32];
    size_t n_ids = 0;
    ids[n_ids++] = 263; /* "▁a" */
    for (size_t i = 1; i < sizeof in - 1; i++) ids[n_ids++] = (unsigned char)in[i] + 3;
    wg_detok_stream st;
    wg_detok_stream_init(&st);
    char acc[128], chunk[256];
    size_t acc_len = 0;
    int all_valid = 1;
    for (size_t i = 0; i < n_ids; i++) {
        size_t c = wg_detok_stream_push(t, &st, ids[i], chunk, sizeof chunk);
        all_valid &= valid_utf8(chunk, c);
        memcpy(acc + acc_len, chunk, c);
        acc_len += c;
    }
    acc_len += wg_detok_stream_flush(&st, acc + acc_len, sizeof acc - acc_len);
    CHECK(all_valid && acc_len == sizeof want - 1 && memcmp(acc, want, acc_len) == 0);

    /* An emoji split over byte tokens is held back, then released whole. */
    wg_detok_stream_init(&st);
    int32_t emoji[] = {1, 29871, 0xF0 + 3, 0x9F + 3, 0xA6 + 3, 0x99 + 3};
    size_t lens[6];
    for (int i = 0; i < 6; i++) lens[i] = wg_detok_stream_push(t, &st, emoji[i], chunk, sizeof chunk);
    CHECK(lens[0] == 0 && lens[1] == 0 && lens[2] == 0 && lens[3] == 0 && lens[4] == 0 && lens[5] == 4);
    CHECK(memcmp(chunk, "\xF0\x9F\xA6\x99", 4) == 0);
    CHECK(wg_detok_stream_flush(&st, chunk, sizeof chunk) == 0);
    /* A truncated sequence at the end is flushed as one U+FFFD. */
    wg_detok_stream_init(&st);
    CHECK(wg_detok_stream_push(t, &st, 15043, chunk, sizeof chunk) == 5 && strcmp(chunk, "Hello") == 0);
    CHECK(wg_detok_stream_push(t, &st, 0xE4 + 3, chunk, sizeof chunk) == 0);
    CHECK(wg_detok_stream_flush(&st, chunk, sizeof chunk) == 3 && strcmp(chunk, "\xEF\xBF\xBD") == 0);
    /* A small buffer cuts at a character boundary and stays terminated. */
    wg_detok_stream_init(&st);
    CHECK(wg_detok_stream_push(t, &st, 15043, chunk, 4) == 3 && strcmp(chunk, "Hel") == 0);

    /* Random id sequences (any tokens, bytes most often): chunks valid, total =
     * sanitized full decode. */
    int failures = 0;
    for (int it = 0; it < 2000; it++) {
        int32_t seq[40];
        int n_seq = 1 + (int)(rnd() % 40);
        for (int i = 0; i < n_seq; i++) seq[i] = (rnd() & 1) ? (int32_t)(3 + rnd() % 256) : (int32_t)(rnd() % 32000);
        char full[4096], san[12288], streamed[12288];
        size_t fl = wg_detokenize(t, seq, (size_t)n_seq, full, sizeof full);
        size_t sl = wg_utf8_sanitize(full, fl, san, sizeof san);
        size_t tl = 0;
        wg_detok_stream_init(&st);
        int ok = fl < sizeof full;
        for (int i = 0; i < n_seq; i++) {
            size_t c = wg_detok_stream_push(t, &st, seq[i], chunk, sizeof chunk);
            ok &= valid_utf8(chunk, c);
            memcpy(streamed + tl, chunk, c);
            tl += c;
        }
        size_t c = wg_detok_stream_flush(&st, chunk, sizeof chunk);
        ok &= valid_utf8(chunk, c);
        memcpy(streamed + tl, chunk, c);
        tl += c;
        ok &= tl == sl && memcmp(streamed, san, sl) == 0;
        if (valid_utf8(full, fl)) ok &= tl == fl && memcmp(streamed, full, fl) == 0;
        failures += !ok;
    }
    CHECK_MSG(failures == 0, "%d random id streams differ", failures);
}

/* ---- llama2.c tokenizers against run.c's golden prompt ids ---- */

static int read_ids(const char *rel, int32_t *ids, int max) {
    char path[1024];
    shared_path(path, sizeof path, rel);
    char *txt = read_all(path, NULL);
    if (!txt) return -1;
    int n = 0;
    char *p = txt, *e;
    for (long v; n < max && (v = strtol(p, &e, 10), e != p); p = e) ids[n++] = (int32_t)v;
    free(txt);
    return n;
}

typedef struct prompt_case {
    const char *tokenizer, *ids_file, *prompt;
    int n;
    int32_t ids[20];
} prompt_case;

static void test_llama2c_prompts(void) {
    /* Expected prompt ids, checked by hand against the pieces of each tokenizer.bin
     * (piece spelled as in the file; <0xNN> is a byte-fallback token). They are
     * also checked below to be what run.c put after BOS in the golden .ids.txt. */
    static const prompt_case cases[] = {
        /* ' ' 'O' 'n' 'ce' ' ' 'u' 'p' 'on' ' a' ' t' 'im' 'e' */
        {"models/aidreams_tok512.bin", "golden/aidreams260K_greedy_once.ids.txt", "Once upon a time", 12,
         {429, 491, 433, 295, 429, 444, 445, 265, 262, 263, 342, 430}},
        /* ' ' 'L' 'il' 'y' ' and' ' T' 'om' */
        {"models/aidreams_tok512.bin", "golden/aidreams260K_greedy_lily.ids.txt", "Lily and Tom", 7,
         {429, 479, 331, 451, 351, 352, 393}},
        /* ' ' <0x4F> 'n' 'c' 'e' ' ' <0x75> 'p' <0x6F> 'n' ' a' ' ' <0x74> <0x69> <0x6D> 'e' */
        {"models/tok512.bin", "golden/stories260K_greedy_once.ids.txt", "Once upon a time", 16,
         {482, 82, 508, 499, 496, 482, 120, 488, 114, 508, 267, 482, 119, 108, 112, 496}},
        /* ' ' <0x4C> <0x69> <0x6C> <0x79> ' a' 'n' 'd' ' ' <0x54> <0x6F> <0x6D> */
        {"models/tok512.bin", "golden/stories260K_greedy_lily.ids.txt", "Lily and Tom", 12,
         {482, 79, 108, 111, 124, 267, 508, 497, 482, 87, 114, 112}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const prompt_case *pc = &cases[c];
        char path[1024], err[256];
        shared_path(path, sizeof path, pc->tokenizer);
        wg_vocab v;
        bool ok = wg_vocab_load_llama2c(path, &v, err, sizeof err);
        CHECK_MSG(ok, "%s", err);
        if (!ok) continue;
        CHECK(v.n == 512 && v.bos == 1 && v.eos == 2 && v.unk == 0 && v.add_bos && v.add_space_prefix);
        CHECK(strcmp(v.pieces[1], "<s>") == 0 && v.types[1] == WG_TOKEN_CONTROL && v.types[0] == WG_TOKEN_UNKNOWN);
        CHECK(v.types[3] == WG_TOKEN_BYTE && v.types[258] == WG_TOKEN_BYTE && v.types[259] == WG_TOKEN_NORMAL);
        wg_tokenizer *t = wg_tokenizer_from_vocab(&v, err, sizeof err);
        wg_vocab_clear(&v);
        CHECK_MSG(t != NULL, "%s", err);
        if (!t) continue;

        int32_t golden[600];
        int n_golden = read_ids(pc->ids_file, golden, 600);
        CHECK_MSG(n_golden > pc->n, "cannot read %s", pc->ids_file);
        if (n_golden > pc->n) {
            CHECK(golden[0] == 1 && memcmp(golden + 1, pc->ids, (size_t)pc->n * sizeof(int32_t)) == 0);
            /* The prompt's ids decode to the prompt. */
            char text[256];
            size_t tl = wg_detokenize(t, golden, (size_t)pc->n + 1, text, sizeof text);
            CHECK(tl == strlen(pc->prompt) && strcmp(text, pc->prompt) == 0);
        }
        int32_t ids[64];
        int64_t n = wg_tokenize(t, pc->prompt, strlen(pc->prompt), true, ids, 64);
        CHECK_MSG(n == pc->n + 1 && ids[0] == 1 && memcmp(ids + 1, pc->ids, (size_t)pc->n * sizeof(int32_t)) == 0,
                  "%s with %s: %lld ids", pc->prompt, pc->tokenizer, (long long)n);
        if (c == 0) test_roundtrip(t, 500); /* a 512-piece vocabulary with byte fallback */
        wg_tokenizer_free(t);
    }
}

/* ---- hand-made vocabularies: merge order, specials, no byte fallback ---- */

static wg_tokenizer *make(const char *const *pieces, const float *scores, const int32_t *types, int32_t n,
                          bool space_prefix) {
    wg_vocab v;
    if (!wg_vocab_alloc(&v, n)) return NULL;
    for (int32_t i = 0; i < n; i++) {
        v.pieces[i] = malloc(strlen(pieces[i]) + 1);
        strcpy(v.pieces[i], pieces[i]);
        v.scores[i] = scores[i];
        if (types) v.types[i] = types[i];
    }
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    v.add_space_prefix = space_prefix;
    char err[128];
    wg_tokenizer *t = wg_tokenizer_from_vocab(&v, err, sizeof err);
    wg_vocab_clear(&v);
    return t;
}

static int ids_are(const wg_tokenizer *t, const char *text, bool bos, const int32_t *want, int n) {
    int32_t ids[64];
    int64_t got = wg_tokenize(t, text, strlen(text), bos, ids, 64);
    return got == n && memcmp(ids, want, (size_t)n * sizeof *ids) == 0;
}

static void test_merge_rules(void) {
    static const char *const p[] = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "<", "s", ">", "<s", "s>", "\xE2\x96\x81"};
    static const int32_t ty[] = {2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    float sc[] = {0, 0, 0, -1, -1, -1, -5, -5, -1, -1, -1, -3, -4, -1};
    wg_tokenizer *t = make(p, sc, ty, 14, false);
    CHECK(t != NULL);
    if (!t) return;
    /* Equal scores: the leftmost pair merges first. */
    CHECK(ids_are(t, "abc", false, (const int32_t[]){6, 5}, 2));
    /* The control piece "<s>" is never produced from text. */
    CHECK(ids_are(t, "<s>", true, (const int32_t[]){1, 11, 10}, 3));
    /* No byte tokens: an unknown character becomes <unk>, one per character. */
    CHECK(ids_are(t, "a\xC3\xA9z", false, (const int32_t[]){3, 0, 0}, 3));
    CHECK(ids_are(t, "a b", false, (const int32_t[]){3, 13, 4}, 3));
    wg_tokenizer_free(t);

    sc[7] = -2; /* now "bc" beats "ab" */
    t = make(p, sc, ty, 14, true);
    /* "▁abc": "bc" outscores "ab"; "abc" is not a piece. */
    CHECK(ids_are(t, "abc", false, (const int32_t[]){13, 3, 7}, 3));
    char out[16];
    CHECK(wg_detokenize(t, (const int32_t[]){13, 3, 7}, 3, out, sizeof out) == 3 && strcmp(out, "abc") == 0);
    CHECK(wg_detokenize(t, (const int32_t[]){0}, 1, out, sizeof out) == 3); /* <unk> shows as U+2585 */
    wg_tokenizer_free(t);

    /* Chained merges, traced by hand as llama2.c's loop does them:
     * a*7 -> aa a a a a a -> aa aa a a a -> aa aa aa a -> aaaa aa a -> aaaa aaa */
    static const char *const q[] = {"<unk>", "<s>", "</s>", "a", "aa", "aaaa", "aaa"};
    float qs[] = {0, 0, 0, -10, -1, -2, -3};
    t = make(q, qs, (const int32_t[]){2, 3, 3, 1, 1, 1, 1}, 7, false);
    CHECK(ids_are(t, "aaaaaaa", false, (const int32_t[]){5, 6}, 2));
    CHECK(ids_are(t, "aaa", false, (const int32_t[]){6}, 1));
    CHECK(ids_are(t, "aaaa", false, (const int32_t[]){5}, 1));
    wg_tokenizer_free(t);

    /* Bad vocabularies are refused with a message. */
    wg_vocab v;
    char err[128] = "";
    CHECK(wg_tokenizer_from_vocab(NULL, err, sizeof err) == NULL && err[0]);
    wg_vocab_alloc(&v, 2);
    v.pieces[0] = malloc(2);
    strcpy(v.pieces[0], "a");
    v.bos = 5;
    err[0] = '\0';
    CHECK(wg_tokenizer_from_vocab(&v, err, sizeof err) == NULL && strstr(err, "outside"));
    v.bos = -1;
    t = wg_tokenizer_from_vocab(&v, err, sizeof err); /* a NULL piece reads as "" */
    CHECK(t != NULL && wg_tokenizer_bos(t) == -1);
    int32_t id;
    if (t) CHECK(wg_tokenize(t, "x", 1, true, &id, 1) == 0); /* no BOS, no unk, no bytes */
    wg_tokenizer_free(t);
    wg_vocab_clear(&v);
    CHECK(v.n == 0 && v.pieces == NULL);
}

/* ---- file parsers on hand-made and hostile inputs ---- */

static size_t pb_varint(unsigned char *o, uint64_t v) {
    size_t n = 0;
    do {
        o[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) o[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

static size_t pb_piece(unsigned char *o, const char *s, float score, int type) {
    unsigned char body[64];
    size_t b = 0, l = strlen(s);
    body[b++] = 0x0A; /* field 1, bytes */
    body[b++] = (unsigned char)l;
    memcpy(body + b, s, l);
    b += l;
    body[b++] = 0x15; /* field 2, fixed32 */
    memcpy(body + b, &score, 4);
    b += 4;
    if (type) {
        body[b++] = 0x18; /* field 3, varint */
        body[b++] = (unsigned char)type;
    }
    body[b++] = 0xA0; /* unknown field 100 (varint): skipped */
    body[b++] = 0x06;
    body[b++] = 0x07;
    size_t n = 0;
    o[n++] = 0x0A; /* ModelProto field 1 */
    o[n++] = (unsigned char)b;
    memcpy(o + n, body, b);
    return n + b;
}

static void test_spm_parser(void) {
    unsigned char m[512];
    size_t n = 0;
    n += pb_piece(m + n, "<unk>", 0, 2);
    n += pb_piece(m + n, "<s>", 0, 3);
    n += pb_piece(m + n, "</s>", 0, 3);
    n += pb_piece(m + n, "<pad>", 0, 3);
    n += pb_piece(m + n, "\xE2\x96\x81hi", -1.5f, 0);
    n += pb_piece(m + n, "<0x41>", 0, 6);
    /* trainer_spec: model_type BPE, unk 0, bos 2, eos 1, pad 3 */
    unsigned char spec[64];
    size_t s = 0;
    s += pb_varint(spec + s, 3 << 3), s += pb_varint(spec + s, 2);
    s += pb_varint(spec + s, 40 << 3), s += pb_varint(spec + s, 0);
    s += pb_varint(spec + s, 41 << 3), s += pb_varint(spec + s, 2);
    s += pb_varint(spec + s, 42 << 3), s += pb_varint(spec + s, 1);
    s += pb_varint(spec + s, 43 << 3), s += pb_varint(spec + s, 3);
    m[n++] = 0x12;
    m[n++] = (unsigned char)s;
    memcpy(m + n, spec, s);
    n += s;
    /* normalizer_spec: add_dummy_prefix false; an unknown string field */
    static const unsigned char norm[] = {0x1A, 0x0C, 0x0A, 0x05, 'n', 'a', 'm', 'e', '!', 0x18, 0x00, 0x22, 0x01, 'x'};
    memcpy(m + n, norm, sizeof norm);
    n += sizeof norm;

    wg_vocab v;
    char err[256];
    bool ok = wg_vocab_parse_spm(m, n, &v, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    if (ok) {
        CHECK(v.n == 6 && v.unk == 0 && v.bos == 2 && v.eos == 1 && v.pad == 3);
        CHECK(!v.add_space_prefix && v.add_bos && !v.add_eos);
        CHECK(strcmp(v.pieces[4], "\xE2\x96\x81hi") == 0 && v.scores[4] == -1.5f && v.types[4] == WG_TOKEN_NORMAL);
        CHECK(v.types[0] == WG_TOKEN_UNKNOWN && v.types[3] == WG_TOKEN_CONTROL && v.types[5] == WG_TOKEN_BYTE);
        wg_vocab_clear(&v);
    }
    /* Negative ids are sign-extended 10-byte varints: pad -1. */
    unsigned char m2[512];
    size_t n2 = pb_piece(m2, "<unk>", 0, 2);
    s = pb_varint(spec, 43 << 3);
    s += pb_varint(spec + s, (uint64_t)-1);
    m2[n2++] = 0x12;
    m2[n2++] = (unsigned char)s;
    memcpy(m2 + n2, spec, s);
    n2 += s;
    ok = wg_vocab_parse_spm(m2, n2, &v, err, sizeof err);
    CHECK(ok && v.pad == -1 && v.bos == -1 && v.unk == 0 && v.add_space_prefix); /* bos 1 >= n: none */
    wg_vocab_clear(&v);

    /* Every truncation and many corruptions fail cleanly or parse (never crash). */
    for (size_t cut = 0; cut < n; cut++) {
        bool r = wg_vocab_parse_spm(m, cut, &v, err, sizeof err);
        if (r) wg_vocab_clear(&v);
        else CHECK(v.n == 0 && v.pieces == NULL && err[0]);
    }
    CHECK(!wg_vocab_parse_spm(m, 0, &v, err, sizeof err) && strstr(err, "no pieces"));
    CHECK(!wg_vocab_parse_spm(NULL, 0, &v, err, sizeof err));
    for (int it = 0; it < 2000; it++) {
        unsigned char c[512];
        memcpy(c, m, n);
        for (int k = 0; k < 3; k++) c[rnd() % n] = (unsigned char)rnd();
        if (wg_vocab_parse_spm(c, n, &v, err, sizeof err)) wg_vocab_clear(&v);
    }
    /* A unigram model is refused by name. */
    unsigned char m3[64];
    size_t n3 = pb_piece(m3, "a", 0, 0);
    m3[n3++] = 0x12, m3[n3++] = 2, m3[n3++] = 0x18, m3[n3++] = 1;
    CHECK(!wg_vocab_parse_spm(m3, n3, &v, err, sizeof err) && strstr(err, "unigram"));
    /* A group wire type is refused. */
    static const unsigned char grp[] = {0x0B, 0x0C};
    CHECK(!wg_vocab_parse_spm(grp, sizeof grp, &v, err, sizeof err));
    CHECK(!wg_vocab_load_spm("/nonexistent/tokenizer.model", &v, err, sizeof err) && strstr(err, "cannot open"));
}

static void test_llama2c_parser(void) {
    unsigned char b[256];
    size_t n = 0;
    int32_t max_len = 4;
    memcpy(b, &max_len, 4);
    n = 4;
    static const char *const pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", "<0x20>", " a", "b c"};
    for (int i = 0; i < 6; i++) {
        float sc = (float)-i;
        int32_t l = (int32_t)strlen(pieces[i]);
        memcpy(b + n, &sc, 4);
        memcpy(b + n + 4, &l, 4);
        memcpy(b + n + 8, pieces[i], (size_t)l);
        n += 8 + (size_t)l;
    }
    wg_vocab v;
    char err[256];
    bool ok = wg_vocab_parse_llama2c(b, n, &v, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    if (ok) {
        CHECK(v.n == 6 && strcmp(v.pieces[2], "</s>") == 0 && v.types[2] == WG_TOKEN_CONTROL);
        CHECK(v.types[3] == WG_TOKEN_BYTE && v.types[4] == WG_TOKEN_NORMAL && v.scores[5] == -5.0f);
        CHECK(strcmp(v.pieces[4], "\xE2\x96\x81" "a") == 0 && strcmp(v.pieces[5], "b\xE2\x96\x81" "c") == 0);
        wg_vocab_clear(&v);
    }
    for (size_t cut = 0; cut < n; cut++) {
        bool r = wg_vocab_parse_llama2c(b, cut, &v, err, sizeof err);
        /* Only cuts at a record boundary with >= 3 records parse. */
        if (r) wg_vocab_clear(&v);
        else CHECK(v.n == 0 && err[0]);
    }
    int32_t neg = -1;
    memcpy(b + 4 + 4, &neg, 4); /* first record's length */
    CHECK(!wg_vocab_parse_llama2c(b, n, &v, err, sizeof err));
    CHECK(!wg_vocab_load_llama2c("/nonexistent/tok.bin", &v, err, sizeof err) && strstr(err, "cannot open"));
}

static void test_spm_file_corruption(const char *path) {
    size_t size;
    char *buf = read_all(path, &size);
    if (!buf) return;
    wg_vocab v;
    char err[256];
    /* Truncations at spread-out points, and bytes flipped in the first pieces. */
    for (int k = 1; k < 40; k++) {
        size_t cut = size / 40 * (size_t)k + (size_t)k;
        if (wg_vocab_parse_spm(buf, cut, &v, err, sizeof err)) wg_vocab_clear(&v);
    }
    for (int it = 0; it < 40; it++) {
        char saved[4];
        size_t at[4];
        for (int k = 0; k < 4; k++) {
            at[k] = rnd() % 4096;
            saved[k] = buf[at[k]];
            buf[at[k]] = (char)rnd();
        }
        if (wg_vocab_parse_spm(buf, size, &v, err, sizeof err)) wg_vocab_clear(&v);
        for (int k = 3; k >= 0; k--) buf[at[k]] = saved[k];
    }
    CHECK(1); /* reaching here without a sanitizer report is the check */
    free(buf);
}

/* ---- GGUF metadata ---- */

/* The reference GGUFs were written by an independent converter from the llama2.c
 * tokenizers: the vocabulary read from their keys must equal the one read from
 * tokenizer.bin, and encode the prompts the same way. */
static void test_gguf_reference(void) {
    static const char *const pairs[2][2] = {{"models/stories260K-f32.gguf", "models/tok512.bin"},
                                            {"models/aidreams260K-f32.gguf", "models/aidreams_tok512.bin"}};
    for (int k = 0; k < 2; k++) {
        char gpath[1024], tpath[1024], err[256];
        shared_path(gpath, sizeof gpath, pairs[k][0]);
        shared_path(tpath, sizeof tpath, pairs[k][1]);
        gguf_file *f = gguf_open(gpath, err, sizeof err);
        CHECK_MSG(f != NULL, "%s", err);
        if (!f) continue;
        wg_vocab g, b;
        bool ok = wg_vocab_from_gguf(f, &g, err, sizeof err);
        CHECK_MSG(ok, "%s", err);
        wg_tokenizer *t = wg_tokenizer_from_gguf(f, err, sizeof err);
        CHECK_MSG(t != NULL, "%s", err);
        gguf_close(f);
        if (ok && wg_vocab_load_llama2c(tpath, &b, err, sizeof err)) {
            int diffs = g.n != b.n;
            for (int32_t i = 0; i < g.n && i < b.n; i++)
                diffs += strcmp(g.pieces[i], b.pieces[i]) != 0 || g.scores[i] != b.scores[i] || g.types[i] != b.types[i];
            CHECK_MSG(diffs == 0, "%s: %d pieces differ from %s", gpath, diffs, tpath);
            CHECK(g.bos == 1 && g.eos == 2 && g.unk == 0 && g.pad == -1 && g.add_bos && !g.add_eos && g.add_space_prefix);
            wg_vocab_clear(&b);
        }
        wg_vocab_clear(&g);
        if (t) {
            int32_t ids[64];
            int64_t n = wg_tokenize(t, "Once upon a time", 16, true, ids, 64);
            /* First prompt ids, as in test_llama2c_prompts. */
            CHECK(n == (k == 0 ? 17 : 13) && ids[0] == 1 && ids[1] == (k == 0 ? 482 : 429) && ids[n - 1] == (k == 0 ? 496 : 430));
            wg_tokenizer_free(t);
        }
    }
}

/* Files written with the GGUF writer: refused models, and llama.cpp's defaults. */
static void test_gguf_keys(void) {
    char dir[64], path[128], err[256];
    snprintf(dir, sizeof dir, "test_tokenizer_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/vocab.gguf", dir);
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "<0x0A>", "\xE2\x96\x81", "\xE2\x96\x81\x61", "b"};
    static const char *const models[] = {"gpt2", "bert", "llama", "llama"};
    for (int k = 0; k < 4; k++) {
        gguf_writer *w = gguf_writer_create();
        bool ok = gguf_writer_set_str(w, "general.architecture", "llama") &&
                  gguf_writer_set_str(w, "tokenizer.ggml.model", models[k]) &&
                  gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, k == 3 ? 6 : 7);
        if (k == 3) { /* scores of the wrong length */
            float sc[7] = {0};
            ok = ok && gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, sc, 7);
        }
        ok = ok && gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1000) && /* out of range: default */
             gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false) && gguf_writer_begin(w, path) &&
             gguf_writer_finish(w);
        CHECK_MSG(ok, "gguf writer: %s", gguf_writer_error(w));
        gguf_writer_free(w);
        gguf_file *f = gguf_open(path, err, sizeof err);
        CHECK_MSG(f != NULL, "%s", err);
        if (!f) continue;
        err[0] = '\0';
        wg_tokenizer *t = wg_tokenizer_from_gguf(f, err, sizeof err);
        if (k < 2) {
            CHECK_MSG(t == NULL && strstr(err, models[k]) && strstr(err, "unsupported"), "%s", err);
        } else if (k == 3) {
            CHECK_MSG(t == NULL && strstr(err, "tokenizer.ggml.scores"), "%s", err);
        } else {
            CHECK_MSG(t != NULL, "%s", err);
            if (t) {
                const wg_vocab *v = wg_tokenizer_vocab(t);
                CHECK(v->n == 7 && v->bos == 1 && v->eos == 2 && v->unk == 0 && v->pad == -1);
                CHECK(v->types[0] == WG_TOKEN_UNKNOWN && v->types[1] == WG_TOKEN_CONTROL && v->types[3] == WG_TOKEN_BYTE &&
                      v->types[5] == WG_TOKEN_NORMAL && v->scores[5] == 0.0f);
                CHECK(v->add_bos && !v->add_eos && !v->add_space_prefix);
                CHECK(ids_are(t, "a b\n", true, (const int32_t[]){1, 0, 4, 6, 3}, 5)); /* no "a" piece and no <0x61>: unk */
                wg_tokenizer_free(t);
            }
        }
        gguf_close(f);
    }
    remove(path);
    rmdir(dir);
}

int main(void) {
    char path[1024], err[256];
    shared_path(path, sizeof path, "models/tokenizer.model");
    wg_vocab v;
    bool ok = wg_vocab_load_spm(path, &v, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    if (ok) {
        wg_tokenizer *t = wg_tokenizer_from_vocab(&v, err, sizeof err);
        wg_vocab_clear(&v);
        CHECK_MSG(t != NULL, "%s", err);
        if (t) {
            test_llama2_vocab(t);
            test_llama2_cases(t);
            test_roundtrip(t, 3000);
            test_long_text(t);
            test_sanitize_and_stream(t);
            wg_tokenizer_free(t);
        }
    }
    test_spm_file_corruption(path);
    test_llama2c_prompts();
    test_merge_rules();
    test_spm_parser();
    test_llama2c_parser();
    test_gguf_reference();
    test_gguf_keys();
    CHECK_DONE();
}
