/* XXH64, written from the published xxHash specification: four 64-bit lanes over 32-byte
 * stripes, then the tail in 8/4/1-byte steps and a final avalanche. Fast enough (several GB/s)
 * to re-check a cached model of gigabytes on every start. */
#include <string.h>

#include "server/model_cache.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t read_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t lane_round(uint64_t acc, uint64_t input) {
    acc += input * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static uint64_t merge_round(uint64_t acc, uint64_t lane) {
    acc ^= lane_round(0, lane);
    return acc * P1 + P4;
}

static void consume_stripe(uint64_t v[4], const uint8_t *p) {
    for (int i = 0; i < 4; i++) v[i] = lane_round(v[i], read_le64(p + 8 * i));
}

void wg_xxh64_init(wg_xxh64_state *s, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->v[0] = seed + P1 + P2;
    s->v[1] = seed + P2;
    s->v[2] = seed;
    s->v[3] = seed - P1;
}

void wg_xxh64_update(wg_xxh64_state *s, const void *data, size_t len) {
    const uint8_t *p = data;
    s->total_len += len;
    if (s->buf_len) {
        size_t take = 32 - s->buf_len;
        if (take > len) take = len;
        memcpy(s->buf + s->buf_len, p, take);
        s->buf_len += (uint32_t)take;
        p += take;
        len -= take;
        if (s->buf_len < 32) return;
        consume_stripe(s->v, s->buf);
        s->buf_len = 0;
    }
    while (len >= 32) {
        consume_stripe(s->v, p);
        p += 32;
        len -= 32;
    }
    if (len) {
        memcpy(s->buf, p, len);
        s->buf_len = (uint32_t)len;
    }
}

uint64_t wg_xxh64_digest(const wg_xxh64_state *s) {
    uint64_t h;
    if (s->total_len >= 32) {
        const uint64_t *v = s->v;
        h = rotl64(v[0], 1) + rotl64(v[1], 7) + rotl64(v[2], 12) + rotl64(v[3], 18);
        for (int i = 0; i < 4; i++) h = merge_round(h, v[i]);
    } else {
        h = s->seed + P5;
    }
    h += s->total_len;
    const uint8_t *p = s->buf;
    size_t len = s->buf_len;
    for (; len >= 8; p += 8, len -= 8) {
        h ^= lane_round(0, read_le64(p));
        h = rotl64(h, 27) * P1 + P4;
    }
    if (len >= 4) {
        h ^= (uint64_t)read_le32(p) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
        len -= 4;
    }
    for (; len; p++, len--) {
        h ^= (uint64_t)*p * P5;
        h = rotl64(h, 11) * P1;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t wg_xxh64(const void *data, size_t len, uint64_t seed) {
    wg_xxh64_state s;
    wg_xxh64_init(&s, seed);
    wg_xxh64_update(&s, data, len);
    return wg_xxh64_digest(&s);
}
