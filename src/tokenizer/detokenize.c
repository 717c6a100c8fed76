/* Token ids back to text: whole sequences (exact bytes) and a stream that only
 * ever releases valid UTF-8. */
#include <string.h>

#include "tokenizer/tokenizer.h"

/* Text of one token; at the start of a text the dummy-prefix space that encoding
 * added in front of the first piece is dropped. Byte pieces keep their byte. */
static const char *piece_text(const wg_tokenizer *t, int32_t id, bool *at_start, size_t *len) {
    const char *p = wg_token_to_bytes(t, id, len);
    if (!p || *len == 0 || !*at_start) return p;
    *at_start = false;
    const wg_vocab *v = wg_tokenizer_vocab(t);
    if (v->add_space_prefix && p[0] == ' ' && v->types[id] != WG_TOKEN_BYTE) {
        p++;
        (*len)--;
    }
    return p;
}

size_t wg_detokenize(const wg_tokenizer *t, const int32_t *ids, size_t n, char *out, size_t cap) {
    size_t total = 0;
    bool at_start = true;
    if (!out) cap = 0; /* a pure size query */
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = piece_text(t, ids[i], &at_start, &len);
        if (!p) continue;
        if (total < cap) memcpy(out + total, p, len < cap - total ? len : cap - total);
        total += len;
    }
    if (cap > 0) out[total < cap ? total : cap - 1] = '\0';
    return total;
}

/* ---- UTF-8 validation with maximal-subpart replacement ---- */

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */

/* Classifies the sequence starting at s[0] (n bytes available):
 * returns its length if it is a complete valid character; 0 if the n bytes are a
 * valid but incomplete prefix; otherwise -k where k >= 1 is the length of the
 * maximal invalid subpart to replace by one U+FFFD. */
static int utf8_scan(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return -1;
    for (int k = 1; k < len; k++) {
        if ((size_t)k >= n) return 0;
        unsigned char b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -k;
    }
    return len;
}

typedef struct out_buf {
    char *p;
    size_t cap, len; /* len: bytes that would have been written */
    bool cut;        /* once a character did not fit, drop the rest (stream mode) */
} out_buf;

static void put(out_buf *o, const void *src, size_t n, bool whole_only) {
    if (o->cut) return;
    if (whole_only && (o->cap == 0 || o->len + n > o->cap - 1)) {
        o->cut = true;
        return;
    }
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->p + o->len, src, n < room ? n : room);
    }
    o->len += n;
}

static void finish(out_buf *o) {
    if (o->cap > 0) o->p[o->len < o->cap ? o->len : o->cap - 1] = '\0';
}

/* Sanitizes bytes a[0..na) ++ b[0..nb) into o. If hold is non-NULL, a valid but
 * incomplete sequence at the end is stored there (<= 3 bytes) instead. */
static void sanitize2(const unsigned char *a, size_t na, const unsigned char *b, size_t nb, out_buf *o,
                      bool whole_only, unsigned char *hold, int *n_hold) {
    size_t n = na + nb, i = 0;
    unsigned char win[4];
    if (n_hold) *n_hold = 0;
    while (i < n) {
        /* A 4-byte window over the virtual concatenation. */
        size_t w = n - i < 4 ? n - i : 4;
        for (size_t k = 0; k < w; k++) win[k] = i + k < na ? a[i + k] : b[i + k - na];
        int r = utf8_scan(win, w);
        if (r > 0) {
            put(o, win, (size_t)r, whole_only);
            i += (size_t)r;
        } else if (r == 0) {
            if (hold) {
                for (size_t k = 0; k < w; k++) hold[k] = win[k];
                *n_hold = (int)w;
                return;
            }
            put(o, REPLACEMENT, 3, whole_only); /* truncated at the very end */
            return;
        } else {
            put(o, REPLACEMENT, 3, whole_only);
            i += (size_t)-r;
        }
    }
}

size_t wg_utf8_sanitize(const char *in, size_t len, char *out, size_t cap) {
    out_buf o = {out, cap, 0, false};
    sanitize2((const unsigned char *)in, len, NULL, 0, &o, false, NULL, NULL);
    finish(&o);
    return o.len;
}

/* ---- streaming ---- */

void wg_detok_stream_init(wg_detok_stream *s) {
    memset(s, 0, sizeof *s);
    s->at_start = true;
}

size_t wg_detok_stream_max_out(const wg_tokenizer *t) {
    /* Every input byte (up to 3 pending + the piece) yields at most 3 output bytes. */
    return 3 * (wg_tokenizer_max_token_bytes(t) + 3) + 1;
}

size_t wg_detok_stream_push(const wg_tokenizer *t, wg_detok_stream *s, int32_t id, char *out, size_t cap) {
    out_buf o = {out, cap, 0, false};
    size_t len;
    const char *p = piece_text(t, id, &s->at_start, &len);
    if (p && len > 0) {
        unsigned char pend[8];
        int np = s->n_pending;
        memcpy(pend, s->pending, (size_t)np);
        sanitize2(pend, (size_t)np, (const unsigned char *)p, len, &o, true, s->pending, &s->n_pending);
    }
    finish(&o);
    return o.len;
}

size_t wg_detok_stream_flush(wg_detok_stream *s, char *out, size_t cap) {
    out_buf o = {out, cap, 0, false};
    if (s->n_pending > 0) sanitize2(s->pending, (size_t)s->n_pending, NULL, 0, &o, true, NULL, NULL);
    s->n_pending = 0;
    finish(&o);
    return o.len;
}
