/* Vocabularies from tokenizer files other than GGUF: SentencePiece's .model
 * (a protobuf ModelProto) and llama2.c's tokenizer.bin. Both parsers work on a
 * memory buffer and check every length against what remains of it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/vocab_load.h"

/* Largest tokenizer file we read into memory; real ones are < 10 MB. */
#define MAX_TOKENIZER_FILE_BYTES ((size_t)1 << 30)

static bool fail(wg_vocab *out, char *err, size_t err_size, const char *fmt, const char *arg) {
    wg_vocab_clear(out);
    if (err && err_size) snprintf(err, err_size, fmt, arg ? arg : "");
    return false;
}

static unsigned char *read_file(const char *path, size_t *size, char *err, size_t err_size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (err && err_size) snprintf(err, err_size, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            unsigned char *nb = ncap <= MAX_TOKENIZER_FILE_BYTES ? realloc(buf, ncap) : NULL;
            if (!nb) {
                if (err && err_size) snprintf(err, err_size, "'%s' is too large or out of memory", path);
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    bool bad = ferror(fp) != 0;
    fclose(fp);
    if (bad) {
        if (err && err_size) snprintf(err, err_size, "cannot read '%s'", path);
        free(buf);
        return NULL;
    }
    *size = len;
    return buf;
}

static char *dup_bytes(const unsigned char *p, size_t len) {
    char *s = malloc(len + 1);
    if (!s) return NULL;
    if (len) memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

/* ---- protobuf wire format ---- */

typedef struct pb_reader {
    const unsigned char *p, *end;
} pb_reader;

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_BYTES = 2, PB_FIXED32 = 5 };

static bool pb_varint(pb_reader *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return false;
        unsigned char b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

static bool pb_tag(pb_reader *r, uint32_t *field, uint32_t *wire) {
    uint64_t t;
    if (!pb_varint(r, &t) || (t >> 3) == 0 || (t >> 3) > UINT32_MAX) return false;
    *field = (uint32_t)(t >> 3);
    *wire = (uint32_t)(t & 7);
    return true;
}

static bool pb_bytes(pb_reader *r, pb_reader *sub) {
    uint64_t len;
    if (!pb_varint(r, &len) || len > (uint64_t)(r->end - r->p)) return false;
    sub->p = r->p;
    sub->end = r->p + len;
    r->p += len;
    return true;
}

static bool pb_fixed32(pb_reader *r, uint32_t *v) {
    if (r->end - r->p < 4) return false;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return true;
}

/* Skips a field we do not use. Groups (wire types 3, 4) are obsolete and refused. */
static bool pb_skip(pb_reader *r, uint32_t wire) {
    uint64_t v;
    pb_reader sub;
    switch (wire) {
    case PB_VARINT: return pb_varint(r, &v);
    case PB_FIXED64:
        if (r->end - r->p < 8) return false;
        r->p += 8;
        return true;
    case PB_BYTES: return pb_bytes(r, &sub);
    case PB_FIXED32:
        if (r->end - r->p < 4) return false;
        r->p += 4;
        return true;
    default: return false;
    }
}

/* Field numbers of sentencepiece_model.proto. */
enum {
    MODEL_PIECES = 1,
    MODEL_TRAINER_SPEC = 2,
    MODEL_NORMALIZER_SPEC = 3,
    PIECE_PIECE = 1,
    PIECE_SCORE = 2,
    PIECE_TYPE = 3,
    TRAINER_MODEL_TYPE = 3,
    TRAINER_UNK_ID = 40,
    TRAINER_BOS_ID = 41,
    TRAINER_EOS_ID = 42,
    TRAINER_PAD_ID = 43,
    NORMALIZER_ADD_DUMMY_PREFIX = 3,
    MODEL_TYPE_BPE = 2,
};

static bool parse_piece(pb_reader m, wg_vocab *v, int32_t i) {
    const unsigned char *text = (const unsigned char *)"";
    size_t text_len = 0;
    float score = 0.0f;
    int32_t type = WG_TOKEN_NORMAL;
    while (m.p < m.end) {
        uint32_t field, wire;
        if (!pb_tag(&m, &field, &wire)) return false;
        if (field == PIECE_PIECE && wire == PB_BYTES) {
            pb_reader s;
            if (!pb_bytes(&m, &s)) return false;
            text = s.p;
            text_len = (size_t)(s.end - s.p);
        } else if (field == PIECE_SCORE && wire == PB_FIXED32) {
            uint32_t bits;
            if (!pb_fixed32(&m, &bits)) return false;
            memcpy(&score, &bits, sizeof score);
        } else if (field == PIECE_TYPE && wire == PB_VARINT) {
            uint64_t t;
            if (!pb_varint(&m, &t)) return false;
            type = t >= WG_TOKEN_NORMAL && t <= WG_TOKEN_BYTE ? (int32_t)t : WG_TOKEN_NORMAL;
        } else if (!pb_skip(&m, wire)) {
            return false;
        }
    }
    v->pieces[i] = dup_bytes(text, text_len);
    v->scores[i] = score;
    v->types[i] = type;
    return v->pieces[i] != NULL;
}

/* An int32 protobuf field: negative values arrive sign-extended to 64 bits. */
static int32_t as_int32(uint64_t v) { return (int32_t)(uint32_t)v; }

bool wg_vocab_parse_spm(const void *data, size_t size, wg_vocab *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    pb_reader top = {NULL, NULL};
    if (data) {
        top.p = data;
        top.end = top.p + size;
    }

    /* Pass 1: count pieces and read the specs. */
    int64_t n = 0;
    int32_t ids[4] = {0, 1, 2, -1}; /* unk, bos, eos, pad: the proto's defaults */
    bool dummy_prefix = true;
    uint64_t model_type = MODEL_TYPE_BPE;
    for (pb_reader r = top; r.p < r.end;) {
        uint32_t field, wire;
        if (!pb_tag(&r, &field, &wire)) return fail(out, err, err_size, "malformed SentencePiece model: bad field tag%s", NULL);
        if (wire != PB_BYTES || (field != MODEL_PIECES && field != MODEL_TRAINER_SPEC && field != MODEL_NORMALIZER_SPEC)) {
            if (!pb_skip(&r, wire)) return fail(out, err, err_size, "malformed SentencePiece model: truncated field%s", NULL);
            continue;
        }
        pb_reader m;
        if (!pb_bytes(&r, &m)) return fail(out, err, err_size, "malformed SentencePiece model: truncated message%s", NULL);
        if (field == MODEL_PIECES) {
            n++;
            continue;
        }
        while (m.p < m.end) {
            uint32_t f2, w2;
            uint64_t v;
            if (!pb_tag(&m, &f2, &w2)) return fail(out, err, err_size, "malformed SentencePiece model: bad field tag in a spec%s", NULL);
            if (w2 != PB_VARINT) {
                if (!pb_skip(&m, w2)) return fail(out, err, err_size, "malformed SentencePiece model: truncated spec field%s", NULL);
                continue;
            }
            if (!pb_varint(&m, &v)) return fail(out, err, err_size, "malformed SentencePiece model: truncated varint%s", NULL);
            if (field == MODEL_TRAINER_SPEC) {
                if (f2 >= TRAINER_UNK_ID && f2 <= TRAINER_PAD_ID) ids[f2 - TRAINER_UNK_ID] = as_int32(v);
                if (f2 == TRAINER_MODEL_TYPE) model_type = v;
            } else if (f2 == NORMALIZER_ADD_DUMMY_PREFIX) {
                dummy_prefix = v != 0;
            }
        }
    }
    if (model_type != MODEL_TYPE_BPE) {
        const char *names[] = {"?", "unigram", "bpe", "word", "char"};
        return fail(out, err, err_size, "unsupported SentencePiece model type '%s': only BPE is supported",
                    model_type < 5 ? names[model_type] : "unknown");
    }
    if (n == 0) return fail(out, err, err_size, "SentencePiece model has no pieces%s", NULL);
    if (n > INT32_MAX) return fail(out, err, err_size, "SentencePiece model has too many pieces%s", NULL);
    if (!wg_vocab_alloc(out, (int32_t)n)) return fail(out, err, err_size, "out of memory reading the SentencePiece model%s", NULL);

    /* Pass 2: the pieces (pass 1 validated the framing). */
    int32_t i = 0;
    for (pb_reader r = top; r.p < r.end;) {
        uint32_t field, wire;
        pb_reader m;
        if (!pb_tag(&r, &field, &wire)) break;
        if (field != MODEL_PIECES || wire != PB_BYTES) {
            if (!pb_skip(&r, wire)) break;
            continue;
        }
        if (!pb_bytes(&r, &m)) break;
        if (!parse_piece(m, out, i)) return fail(out, err, err_size, "malformed SentencePiece model: bad piece%s", NULL);
        i++;
    }
    int32_t n32 = out->n;
    int32_t *dst[4] = {&out->unk, &out->bos, &out->eos, &out->pad};
    for (int k = 0; k < 4; k++) *dst[k] = ids[k] >= 0 && ids[k] < n32 ? ids[k] : -1;
    out->add_bos = true;
    out->add_eos = false;
    out->add_space_prefix = dummy_prefix;
    return true;
}

bool wg_vocab_load_spm(const char *path, wg_vocab *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    size_t size;
    unsigned char *buf = read_file(path, &size, err, err_size);
    if (!buf) return false;
    bool ok = wg_vocab_parse_spm(buf, size, out, err, err_size);
    free(buf);
    return ok;
}

/* ---- llama2.c tokenizer.bin ---- */

static int32_t read_i32(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return (int32_t)u;
}

/* Walks the records; with v == NULL only counts them. Returns the count or -1. */
static int64_t llama2c_records(const unsigned char *p, size_t size, wg_vocab *v) {
    size_t off = 4;
    int64_t n = 0;
    while (off < size) {
        if (size - off < 8) return -1;
        uint32_t score_bits = (uint32_t)read_i32(p + off);
        int32_t len = read_i32(p + off + 4);
        off += 8;
        if (len < 0 || (size_t)len > size - off) return -1;
        if (v) {
            /* Spaces become U+2581 (3 bytes each): SentencePiece spelling. */
            int32_t spaces = 0;
            for (int32_t k = 0; k < len; k++) spaces += p[off + k] == ' ';
            char *s = malloc((size_t)len + 2 * (size_t)spaces + 1);
            if (!s) return -1;
            size_t w = 0;
            for (int32_t k = 0; k < len; k++) {
                if (p[off + k] == ' ') {
                    memcpy(s + w, "\xE2\x96\x81", 3);
                    w += 3;
                } else {
                    s[w++] = (char)p[off + k];
                }
            }
            s[w] = '\0';
            v->pieces[n] = s;
            memcpy(&v->scores[n], &score_bits, sizeof(float));
        }
        off += (size_t)len;
        if (++n > INT32_MAX) return -1;
    }
    return n;
}

bool wg_vocab_parse_llama2c(const void *data, size_t size, wg_vocab *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    const unsigned char *p = data;
    if (!p || size < 4) return fail(out, err, err_size, "llama2.c tokenizer too short%s", NULL);
    if (read_i32(p) < 0) return fail(out, err, err_size, "llama2.c tokenizer: negative max_token_length%s", NULL);
    int64_t n = llama2c_records(p, size, NULL);
    if (n < 0) return fail(out, err, err_size, "llama2.c tokenizer: truncated or bad token record%s", NULL);
    if (n < 3) return fail(out, err, err_size, "llama2.c tokenizer: fewer than 3 tokens%s", NULL);
    if (!wg_vocab_alloc(out, (int32_t)n)) return fail(out, err, err_size, "out of memory reading the llama2.c tokenizer%s", NULL);
    if (llama2c_records(p, size, out) != n) return fail(out, err, err_size, "out of memory reading the llama2.c tokenizer%s", NULL);
    /* llama2.c stores its own spellings of the specials (e.g. "\n<s>\n"):
     * use SentencePiece's, as GGUF files do. */
    static const char *const specials[3] = {"<unk>", "<s>", "</s>"};
    for (int k = 0; k < 3; k++) {
        char *s = dup_bytes((const unsigned char *)specials[k], strlen(specials[k]));
        if (!s) return fail(out, err, err_size, "out of memory reading the llama2.c tokenizer%s", NULL);
        free(out->pieces[k]);
        out->pieces[k] = s;
    }
    out->types[0] = WG_TOKEN_UNKNOWN;
    out->types[1] = out->types[2] = WG_TOKEN_CONTROL;
    for (int32_t i = 3; i < out->n; i++)
        if (wg_piece_byte_value(out->pieces[i]) >= 0) out->types[i] = WG_TOKEN_BYTE;
    out->unk = 0;
    out->bos = 1;
    out->eos = 2;
    out->pad = -1;
    out->add_bos = true;
    out->add_eos = false;
    out->add_space_prefix = true;
    return true;
}

bool wg_vocab_load_llama2c(const char *path, wg_vocab *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    size_t size;
    unsigned char *buf = read_file(path, &size, err, err_size);
    if (!buf) return false;
    bool ok = wg_vocab_parse_llama2c(buf, size, out, err, err_size);
    free(buf);
    return ok;
}
