/* Tokenizer construction, dispatch between the two models, and
 * SentencePiece-BPE encoding (as SentencePiece's bpe_model.cc, llama.cpp's
 * llm_tokenizer_spm and llama2.c's encode): the text, with a dummy-prefix space
 * and every space spelled U+2581, is split into UTF-8 characters; the adjacent
 * pair whose concatenation is the highest-scoring piece (leftmost on ties) is
 * merged until no pair is a piece; leftover symbols that are not pieces become
 * <0xNN> byte tokens. A priority queue of candidate pairs keeps it O(n log n). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/vocab_load.h"

#define SPACE_MARK "\xE2\x96\x81" /* U+2581, SentencePiece's visible space */

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

/* Pieces that text may produce. Control, unknown, unused and byte pieces are
 * never matched from text (as in SentencePiece), which also keeps decoding exact. */
static bool matchable(int32_t type) {
    return type != WG_TOKEN_CONTROL && type != WG_TOKEN_UNKNOWN && type != WG_TOKEN_UNUSED && type != WG_TOKEN_BYTE;
}

static int32_t lookup(const wg_tokenizer *t, const char *s, size_t len) {
    if (len > t->max_piece_len) return -1;
    for (size_t i = (size_t)hash_bytes(s, len) & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        int32_t id = t->slots[i];
        if (id < 0) return -1;
        if (t->piece_len[id] == len && memcmp(t->v.pieces[id], s, len) == 0) return id;
    }
}

static bool copy_vocab(wg_vocab *dst, const wg_vocab *src) {
    if (!wg_vocab_alloc(dst, src->n)) return false;
    for (int32_t i = 0; i < src->n; i++) {
        const char *p = src->pieces[i] ? src->pieces[i] : "";
        size_t len = strlen(p);
        dst->pieces[i] = malloc(len + 1);
        if (!dst->pieces[i]) return false;
        memcpy(dst->pieces[i], p, len + 1);
        dst->scores[i] = src->scores ? src->scores[i] : 0.0f;
        dst->types[i] = src->types ? src->types[i] : WG_TOKEN_NORMAL;
    }
    dst->bos = src->bos;
    dst->eos = src->eos;
    dst->unk = src->unk;
    dst->pad = src->pad;
    dst->add_bos = src->add_bos;
    dst->add_eos = src->add_eos;
    dst->add_space_prefix = src->add_space_prefix;
    dst->kind = src->kind;
    dst->eot = src->eot;
    dst->eom = src->eom;
    dst->pre = src->pre;
    if (src->n_merges > 0) {
        if (!wg_vocab_alloc_merges(dst, src->n_merges)) return false;
        for (int32_t i = 0; i < src->n_merges; i++) {
            const char *m = src->merges[i] ? src->merges[i] : "";
            size_t len = strlen(m);
            if (!(dst->merges[i] = malloc(len + 1))) return false;
            memcpy(dst->merges[i], m, len + 1);
        }
    }
    return true;
}

/* Bytes a token stands for in running text (see wg_token_to_bytes). */
static size_t token_text(const wg_tokenizer *t, int32_t id, char *out) {
    const char *p = t->v.pieces[id];
    int32_t type = t->v.types[id];
    if (type == WG_TOKEN_CONTROL) return 0;
    if (t->v.kind == WG_VOCAB_BPE) {
        /* As llama.cpp's token_to_piece without special: byte-level pieces decode
         * to their bytes, user-defined pieces are literal text, the rest is silent. */
        if (type == WG_TOKEN_NORMAL) return wg_bpe_piece_bytes(p, out);
        if (type != WG_TOKEN_USER_DEFINED) return 0;
        size_t len = strlen(p);
        if (out) memcpy(out, p, len);
        return len;
    }
    if (type == WG_TOKEN_UNKNOWN) {
        if (out) memcpy(out, "\xE2\x96\x85", 3); /* U+2585, as llama.cpp prints it */
        return 3;
    }
    int b = type == WG_TOKEN_BYTE ? wg_piece_byte_value(p) : -1;
    if (b >= 0) {
        if (out) out[0] = (char)b;
        return 1;
    }
    size_t w = 0;
    for (size_t i = 0; p[i];) {
        if (p[i] == SPACE_MARK[0] && p[i + 1] == SPACE_MARK[1] && p[i + 2] == SPACE_MARK[2]) {
            if (out) out[w] = ' ';
            w++;
            i += 3;
        } else {
            if (out) out[w] = p[i];
            w++;
            i++;
        }
    }
    return w;
}

static bool build_tables(wg_tokenizer *t) {
    int32_t n = t->v.n;
    t->piece_len = malloc((size_t)n * sizeof *t->piece_len);
    t->text_off = malloc(((size_t)n + 1) * sizeof *t->text_off);
    size_t n_slots = 16;
    while (n_slots < (size_t)n * 2) n_slots *= 2;
    t->slots = malloc(n_slots * sizeof *t->slots);
    if (!t->piece_len || !t->text_off || !t->slots) return false;
    t->slot_mask = n_slots - 1;
    memset(t->slots, 0xff, n_slots * sizeof *t->slots); /* all -1 */
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;

    size_t total = 0;
    for (int32_t id = 0; id < n; id++) {
        size_t len = strlen(t->v.pieces[id]);
        if (len > UINT32_MAX) return false;
        t->piece_len[id] = (uint32_t)len;
        int32_t type = t->v.types[id];
        int b = type == WG_TOKEN_BYTE ? wg_piece_byte_value(t->v.pieces[id]) : -1;
        if (b >= 0 && t->byte_id[b] < 0) {
            t->byte_id[b] = id;
            t->has_byte_tokens = true;
        }
        if (matchable(type) && len > 0) {
            size_t i = (size_t)hash_bytes(t->v.pieces[id], len) & t->slot_mask;
            bool dup = false;
            for (; t->slots[i] >= 0; i = (i + 1) & t->slot_mask) {
                int32_t o = t->slots[i];
                if (t->piece_len[o] == len && memcmp(t->v.pieces[o], t->v.pieces[id], len) == 0) dup = true;
            }
            if (!dup) { /* the first id of a duplicated piece wins */
                t->slots[i] = id;
                if (len > t->max_piece_len) t->max_piece_len = len;
            }
        }
        size_t tl = token_text(t, id, NULL);
        t->text_off[id] = total;
        total += tl;
        if (tl > t->max_text_len) t->max_text_len = tl;
    }
    t->text_off[n] = total;
    t->text = malloc(total ? total : 1);
    if (!t->text) return false;
    for (int32_t id = 0; id < n; id++) token_text(t, id, t->text + t->text_off[id]);
    if (t->v.kind == WG_VOCAB_BPE && !(t->bpe = wg_bpe_create(&t->v, NULL, NULL, 0))) return false;
    return wg_specials_build(t);
}

wg_tokenizer *wg_tokenizer_from_vocab(const wg_vocab *v, char *err, size_t err_size) {
    if (!v || v->n <= 0 || !v->pieces) {
        if (err && err_size) snprintf(err, err_size, "tokenizer: empty vocabulary");
        return NULL;
    }
    if (v->kind != WG_VOCAB_SPM && v->kind != WG_VOCAB_BPE) {
        if (err && err_size) snprintf(err, err_size, "tokenizer: unknown vocabulary kind %d", (int)v->kind);
        return NULL;
    }
    const int32_t specials[6] = {v->bos, v->eos, v->unk, v->pad, v->eot, v->eom};
    for (int k = 0; k < 6; k++) {
        if (specials[k] < -1 || specials[k] >= v->n) {
            if (err && err_size) snprintf(err, err_size, "tokenizer: special token id %d outside the vocabulary (%d pieces)", (int)specials[k], (int)v->n);
            return NULL;
        }
    }
    wg_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !copy_vocab(&t->v, v) || !build_tables(t)) {
        wg_tokenizer_free(t);
        if (err && err_size) snprintf(err, err_size, "tokenizer: out of memory");
        return NULL;
    }
    return t;
}

wg_tokenizer *wg_tokenizer_from_gguf(const gguf_file *f, char *err, size_t err_size) {
    wg_vocab v;
    if (!wg_vocab_from_gguf(f, &v, err, err_size)) return NULL;
    wg_tokenizer *t = wg_tokenizer_from_vocab(&v, err, err_size);
    wg_vocab_clear(&v);
    return t;
}

void wg_tokenizer_free(wg_tokenizer *t) {
    if (!t) return;
    wg_vocab_clear(&t->v);
    free(t->piece_len);
    free(t->slots);
    free(t->text);
    free(t->text_off);
    wg_bpe_free(t->bpe);
    free(t->specials);
    free(t->eog);
    free(t);
}

int32_t wg_tokenizer_n_vocab(const wg_tokenizer *t) { return t->v.n; }
int32_t wg_tokenizer_bos(const wg_tokenizer *t) { return t->v.bos; }
int32_t wg_tokenizer_eos(const wg_tokenizer *t) { return t->v.eos; }
bool wg_tokenizer_add_bos(const wg_tokenizer *t) { return t->v.add_bos; }
bool wg_tokenizer_add_space_prefix(const wg_tokenizer *t) { return t->v.add_space_prefix; }
const wg_vocab *wg_tokenizer_vocab(const wg_tokenizer *t) { return &t->v; }
size_t wg_tokenizer_max_token_bytes(const wg_tokenizer *t) { return t->max_text_len; }

const char *wg_token_to_bytes(const wg_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->v.n) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->text_off[id + 1] - t->text_off[id];
    return t->text + t->text_off[id];
}

/* ---- encoding ---- */

typedef struct symbol {
    int32_t start, len; /* bytes of the normalized text; len 0 once merged away */
    int32_t prev, next; /* -1 at the ends */
} symbol;

typedef struct pair {
    float score;
    int32_t left, right;
    int32_t len; /* len(left) + len(right) when queued: stale if that changed */
} pair;

typedef struct pair_heap {
    pair *a;
    size_t n, cap;
} pair_heap;

/* Higher score first; on equal scores the leftmost pair. */
static bool before(const pair *x, const pair *y) {
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static bool heap_push(pair_heap *h, pair p) {
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 64;
        pair *na = realloc(h->a, ncap * sizeof *na);
        if (!na) return false;
        h->a = na;
        h->cap = ncap;
    }
    size_t i = h->n++;
    while (i > 0 && before(&p, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = p;
    return true;
}

static pair heap_pop(pair_heap *h) {
    pair top = h->a[0];
    pair last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(&h->a[c + 1], &h->a[c])) c++;
        if (!before(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0) h->a[i] = last;
    return top;
}

typedef struct encoder {
    const wg_tokenizer *t;
    const char *text;
    symbol *sym;
    pair_heap heap;
} encoder;

static bool try_pair(encoder *e, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    int32_t len = e->sym[left].len + e->sym[right].len;
    int32_t id = lookup(e->t, e->text + e->sym[left].start, (size_t)len);
    if (id < 0) return true;
    pair p = {e->t->v.scores[id], left, right, len};
    return heap_push(&e->heap, p);
}

/* Length of the valid UTF-8 character at s (n bytes left), or 1 for a byte that
 * does not start one (each such byte is a symbol of its own). */
static int32_t utf8_char_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int32_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 1;
    if ((size_t)len > n || s[1] < lo || s[1] > hi) return 1;
    for (int32_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 1;
    return len;
}

typedef struct id_sink {
    int32_t *out;
    int64_t max_out, count;
} id_sink;

static void emit(id_sink *s, int32_t id) {
    if (s->count < s->max_out) s->out[s->count] = id;
    s->count++;
}

/* Emits the token(s) of one final symbol. */
static void emit_symbol(const wg_tokenizer *t, id_sink *s, const char *p, int32_t len) {
    int32_t id = lookup(t, p, (size_t)len);
    if (id >= 0) {
        emit(s, id);
        return;
    }
    if (!t->has_byte_tokens) {
        if (t->v.unk >= 0) emit(s, t->v.unk);
        return;
    }
    for (int32_t k = 0; k < len; k++) {
        int32_t b = t->byte_id[(unsigned char)p[k]];
        if (b < 0) b = t->v.unk;
        if (b >= 0) emit(s, b);
    }
}

/* Normalizes: optional leading space, then ' ' -> U+2581. Returns the length or -1. */
static int64_t normalize(bool prefix, const char *text, size_t len, char **out) {
    if (len > (size_t)(INT32_MAX / 3 - 3)) return -1; /* symbol offsets are int32 */
    char *buf = malloc(3 * (len + 1));
    if (!buf) return -1;
    size_t w = 0;
    if (prefix && len > 0) {
        memcpy(buf, SPACE_MARK, 3);
        w = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + w, SPACE_MARK, 3);
            w += 3;
        } else {
            buf[w++] = text[i];
        }
    }
    *out = buf;
    return (int64_t)w;
}

/* SentencePiece encoding of one stretch of text (with the dummy-prefix space when prefix). */
static bool spm_encode(const wg_tokenizer *t, const char *text, size_t len, bool prefix, id_sink *sink) {
    if (len == 0) return true;
    char *norm = NULL;
    int64_t nlen = normalize(prefix, text, len, &norm);
    if (nlen < 0) return false;
    encoder e = {t, norm, malloc((size_t)nlen * sizeof(symbol)), {NULL, 0, 0}};
    if (!e.sym) {
        free(norm);
        return false;
    }
    int32_t n_sym = 0;
    for (int32_t pos = 0; pos < nlen; n_sym++) {
        int32_t cl = utf8_char_len((const unsigned char *)norm + pos, (size_t)(nlen - pos));
        e.sym[n_sym] = (symbol){pos, cl, n_sym - 1, -1};
        if (n_sym > 0) e.sym[n_sym - 1].next = n_sym;
        pos += cl;
    }
    bool ok = true;
    for (int32_t i = 0; i + 1 < n_sym && ok; i++) ok = try_pair(&e, i, i + 1);
    while (ok && e.heap.n > 0) {
        pair p = heap_pop(&e.heap);
        symbol *l = &e.sym[p.left], *r = &e.sym[p.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != p.len) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) e.sym[r->next].prev = p.left;
        ok = try_pair(&e, l->prev, p.left) && try_pair(&e, p.left, l->next);
    }
    if (ok) {
        for (int32_t i = 0; i >= 0 && n_sym > 0; i = e.sym[i].next)
            emit_symbol(t, sink, norm + e.sym[i].start, e.sym[i].len);
    }
    free(e.heap.a);
    free(e.sym);
    free(norm);
    return ok;
}

/* ---- byte-level BPE: pre-tokenize, then BPE each piece ---- */

typedef struct bpe_run {
    const wg_tokenizer *t;
    const char *text;
    id_sink *sink;
} bpe_run;

static void bpe_emit(void *ctx, int32_t id) { emit((id_sink *)ctx, id); }

static bool bpe_word(void *ctx, size_t start, size_t len) {
    bpe_run *r = ctx;
    return wg_bpe_encode_word(r->t->bpe, r->text + start, len, bpe_emit, r->sink);
}

static bool bpe_encode(const wg_tokenizer *t, const char *text, size_t len, id_sink *sink) {
    bpe_run r = {t, text, sink};
    return wg_pretok(t->v.pre, text, len, bpe_word, &r);
}

int64_t wg_tokenize_ex(const wg_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                       int32_t *out, int64_t max_out) {
    id_sink sink = {out, out ? max_out : 0, 0};
    if (sink.max_out < 0) sink.max_out = 0;
    if (add_bos && t->v.bos >= 0) emit(&sink, t->v.bos);
    if (len == 0) return sink.count;
    if (!text) return -1;
    bool bpe = t->v.kind == WG_VOCAB_BPE;
    if (!bpe && !parse_special) /* plain SentencePiece: no partition at all */
        return spm_encode(t, text, len, t->v.add_space_prefix, &sink) ? sink.count : -1;

    /* Special tokens are cut out first; the text between them is encoded on its
     * own. SentencePiece adds its dummy prefix at the start and after each
     * special token, as llama.cpp does. */
    bool prev_special = true;
    for (size_t pos = 0; pos < len;) {
        int32_t id = -1;
        size_t mlen = 0;
        size_t at = wg_specials_find(t, text, len, pos, parse_special, &id, &mlen);
        if (at > pos) {
            bool ok = bpe ? bpe_encode(t, text + pos, at - pos, &sink)
                          : spm_encode(t, text + pos, at - pos, t->v.add_space_prefix && prev_special, &sink);
            if (!ok) return -1;
            prev_special = false;
        }
        if (at == len) break;
        emit(&sink, id);
        prev_special = true;
        pos = at + mlen;
    }
    return sink.count;
}

int64_t wg_tokenize(const wg_tokenizer *t, const char *text, size_t len, bool add_bos,
                    int32_t *out, int64_t max_out) {
    return wg_tokenize_ex(t, text, len, add_bos, false, out, max_out);
}
