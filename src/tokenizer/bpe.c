/* Byte-level BPE encoding of one pre-token: map bytes to GPT-2's alphabet,
 * then repeatedly merge the adjacent pair of lowest merge rank (leftmost on
 * ties) until no adjacent pair has a merge; a priority queue of candidate
 * pairs keeps it O(n log n). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/bpe.h"
#include "tokenizer/unicode.h"

/* ---- the byte alphabet ---- */

static bool byte_is_printable(unsigned char b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t wg_bpe_byte_to_cp(unsigned char b) {
    if (byte_is_printable(b)) return b;
    /* Index of b among the non-printable bytes, in byte order. */
    uint32_t k;
    if (b <= 0x20) k = b;                    /* 0x00..0x20: 33 bytes */
    else if (b <= 0xA0) k = 33 + (b - 0x7F); /* 0x7F..0xA0: 34 bytes */
    else k = 67;                             /* 0xAD */
    return 0x100 + k;
}

int wg_bpe_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return byte_is_printable((unsigned char)cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    uint32_t k = cp - 0x100;
    if (k < 33) return (int)k;
    if (k < 67) return (int)(0x7F + k - 33);
    return 0xAD;
}

size_t wg_bpe_piece_bytes(const char *piece, char *out) {
    size_t len = strlen(piece), w = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int cl = wg_utf8_decode((const unsigned char *)piece + i, len - i, &cp);
        int b = (cp & WG_UTF8_INVALID) ? -1 : wg_bpe_cp_to_byte(cp);
        if (b >= 0) {
            if (out) out[w] = (char)b;
            w++;
        } else {
            if (out) memcpy(out + w, piece + i, (size_t)cl);
            w += (size_t)cl;
        }
        i += (size_t)cl;
    }
    return w;
}

/* ---- tables ---- */

typedef struct merge_slot {
    uint64_t key; /* (left id << 32 | right id) + 1; 0 = empty */
    int32_t rank, result;
} merge_slot;

struct wg_bpe {
    const wg_vocab *v;     /* borrowed: the tokenizer owns it and outlives us */
    int32_t *piece_slots;  /* open addressing: NORMAL piece ids, -1 empty */
    size_t piece_mask;
    uint32_t *piece_len;
    merge_slot *merges;
    size_t merge_mask;
    int32_t byte_id[256];  /* piece id of each byte's alphabet character, -1 if none */
};

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int32_t piece_id(const wg_bpe *b, const char *s, size_t len) {
    for (size_t i = (size_t)hash_bytes(s, len) & b->piece_mask;; i = (i + 1) & b->piece_mask) {
        int32_t id = b->piece_slots[i];
        if (id < 0) return -1;
        if (b->piece_len[id] == len && memcmp(b->v->pieces[id], s, len) == 0) return id;
    }
}

static const merge_slot *find_merge(const wg_bpe *b, int32_t left, int32_t right) {
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    for (size_t i = (size_t)hash_u64(key) & b->merge_mask;; i = (i + 1) & b->merge_mask) {
        if (b->merges[i].key == 0) return NULL;
        if (b->merges[i].key == key) return &b->merges[i];
    }
}

static size_t table_size(size_t n) {
    size_t s = 16;
    while (s < n * 2) s *= 2;
    return s;
}

static bool index_pieces(wg_bpe *b) {
    const wg_vocab *v = b->v;
    size_t n_slots = table_size((size_t)v->n);
    b->piece_slots = malloc(n_slots * sizeof *b->piece_slots);
    b->piece_len = malloc((size_t)v->n * sizeof *b->piece_len);
    if (!b->piece_slots || !b->piece_len) return false;
    memset(b->piece_slots, 0xff, n_slots * sizeof *b->piece_slots);
    b->piece_mask = n_slots - 1;
    for (int32_t id = 0; id < v->n; id++) {
        size_t len = strlen(v->pieces[id]);
        b->piece_len[id] = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        if (v->types[id] != WG_TOKEN_NORMAL || len == 0 || len > UINT32_MAX) continue;
        if (piece_id(b, v->pieces[id], len) >= 0) continue; /* the first id of a duplicate wins */
        size_t i = (size_t)hash_bytes(v->pieces[id], len) & b->piece_mask;
        while (b->piece_slots[i] >= 0) i = (i + 1) & b->piece_mask;
        b->piece_slots[i] = id;
    }
    for (int c = 0; c < 256; c++) {
        char s[4];
        int l = wg_utf8_encode(wg_bpe_byte_to_cp((unsigned char)c), s);
        b->byte_id[c] = piece_id(b, s, (size_t)l);
    }
    return true;
}

static bool index_merges(wg_bpe *b, int32_t *n_skipped) {
    const wg_vocab *v = b->v;
    size_t n_slots = table_size((size_t)v->n_merges);
    b->merges = calloc(n_slots, sizeof *b->merges);
    if (!b->merges) return false;
    b->merge_mask = n_slots - 1;
    size_t max_len = 0;
    for (int32_t i = 0; i < v->n_merges; i++) {
        size_t l = strlen(v->merges[i]);
        if (l > max_len) max_len = l;
    }
    char *joined = malloc(max_len + 1);
    if (!joined) return false;
    int32_t skipped = 0;
    for (int32_t r = 0; r < v->n_merges; r++) {
        const char *m = v->merges[r];
        /* "left right": split at the first space after the first byte (a left
         * piece is never empty; byte-level pieces hold no plain space). */
        const char *sp = m[0] ? strchr(m + 1, ' ') : NULL;
        int32_t left = -1, right = -1, result = -1;
        if (sp) {
            size_t ll = (size_t)(sp - m), rl = strlen(sp + 1);
            left = piece_id(b, m, ll);
            right = rl ? piece_id(b, sp + 1, rl) : -1;
            memcpy(joined, m, ll);
            memcpy(joined + ll, sp + 1, rl);
            result = piece_id(b, joined, ll + rl);
        }
        if (left < 0 || right < 0 || result < 0) {
            skipped++;
            continue;
        }
        uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
        size_t i = (size_t)hash_u64(key) & b->merge_mask;
        while (b->merges[i].key != 0 && b->merges[i].key != key) i = (i + 1) & b->merge_mask;
        if (b->merges[i].key == key) continue; /* a repeated merge keeps its first (lowest) rank */
        b->merges[i] = (merge_slot){key, r, result};
    }
    free(joined);
    if (n_skipped) *n_skipped = skipped;
    return true;
}

wg_bpe *wg_bpe_create(const wg_vocab *v, int32_t *n_skipped, char *err, size_t err_size) {
    wg_bpe *b = calloc(1, sizeof *b);
    if (b) b->v = v;
    if (!b || !index_pieces(b) || !index_merges(b, n_skipped)) {
        wg_bpe_free(b);
        if (err && err_size) snprintf(err, err_size, "tokenizer: out of memory indexing the BPE merges");
        return NULL;
    }
    return b;
}

void wg_bpe_free(wg_bpe *b) {
    if (!b) return;
    free(b->piece_slots);
    free(b->piece_len);
    free(b->merges);
    free(b);
}

/* ---- encoding one word ---- */

typedef struct sym {
    int32_t id;         /* piece id, -1 for a byte with no piece */
    int32_t prev, next; /* -1 at the ends */
} sym;

typedef struct cand {
    int32_t rank, left, right, result; /* right: its id when queued, to spot stale pairs */
} cand;

typedef struct cand_heap {
    cand *a;
    size_t n, cap;
} cand_heap;

static bool before(const cand *x, const cand *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static bool heap_push(cand_heap *h, cand c) {
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 32;
        cand *na = realloc(h->a, ncap * sizeof *na);
        if (!na) return false;
        h->a = na;
        h->cap = ncap;
    }
    size_t i = h->n++;
    while (i > 0 && before(&c, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = c;
    return true;
}

static cand heap_pop(cand_heap *h) {
    cand top = h->a[0], last = h->a[--h->n];
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

/* Queues the pair (left, its next) if it has a merge. */
static bool queue_pair(const wg_bpe *b, const sym *s, cand_heap *h, int32_t left) {
    if (left < 0) return true;
    int32_t right = s[left].next;
    if (right < 0 || s[left].id < 0 || s[right].id < 0) return true;
    const merge_slot *m = find_merge(b, s[left].id, s[right].id);
    if (!m) return true;
    return heap_push(h, (cand){m->rank, left, right, m->result});
}

bool wg_bpe_encode_word(const wg_bpe *b, const char *word, size_t len, wg_bpe_emit_fn emit, void *ctx) {
    if (len == 0) return true;
    if (len > (size_t)INT32_MAX / 2) return false;
    /* The word spelled in the byte alphabet (2 bytes per byte at most). */
    char *mapped = malloc(2 * len);
    sym *s = malloc(len * sizeof *s);
    if (!mapped || !s) {
        free(mapped);
        free(s);
        return false;
    }
    size_t ml = 0;
    for (size_t i = 0; i < len; i++) ml += (size_t)wg_utf8_encode(wg_bpe_byte_to_cp((unsigned char)word[i]), mapped + ml);
    int32_t whole = len > 1 && b->v->pre == WG_PRE_LLAMA3 ? piece_id(b, mapped, ml) : -1;
    free(mapped);
    if (whole >= 0) { /* a word that is a piece is not merged (ignore_merges) */
        free(s);
        emit(ctx, whole);
        return true;
    }
    int32_t n = (int32_t)len;
    for (int32_t i = 0; i < n; i++) s[i] = (sym){b->byte_id[(unsigned char)word[i]], i - 1, i + 1 < n ? i + 1 : -1};
    cand_heap h = {NULL, 0, 0};
    bool ok = true;
    for (int32_t i = 0; ok && i + 1 < n; i++) ok = queue_pair(b, s, &h, i);
    while (ok && h.n > 0) {
        cand c = heap_pop(&h);
        /* Stale if either side was merged away or changed since it was queued. */
        if (s[c.left].id < 0 || s[c.left].next != c.right || s[c.right].id < 0) continue;
        const merge_slot *m = find_merge(b, s[c.left].id, s[c.right].id);
        if (!m || m->rank != c.rank) continue;
        s[c.left].id = c.result;
        s[c.left].next = s[c.right].next;
        if (s[c.right].next >= 0) s[s[c.right].next].prev = c.left;
        s[c.right].id = -2; /* merged away */
        ok = queue_pair(b, s, &h, s[c.left].prev) && queue_pair(b, s, &h, c.left);
    }
    if (ok) {
        for (int32_t i = 0; i >= 0; i = s[i].next) {
            int32_t id = s[i].id >= 0 ? s[i].id : b->v->unk;
            if (id >= 0) emit(ctx, id);
        }
    }
    free(h.a);
    free(s);
    return ok;
}
