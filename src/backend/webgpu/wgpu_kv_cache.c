/* KV caches of the WebGPU backend, kept in arenas (see wgb_kv_arena): the caches of one
 * layer of many sequences share one buffer, so decode_attention can store and attend for
 * all sequences of a batched step in one dispatch each instead of one per sequence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_internal.h"
#include "quant/types.h"

static void set_binding(wgb_kv_arena *a, wg_tensor *t, int slot) {
    wgb_tensor *wt = wgb_t(t);
    wt->parts[0].bind.buf = a->buf;
    wt->parts[0].bind.id = a->id;
    wt->parts[0].bind.offset = (uint64_t)slot * a->slot_bytes;
}

/* Moves the arena to a buffer of `cap` slots, copying the caches it holds. */
static bool arena_grow(wgb_ctx *c, wgb_kv_arena *a, int cap, char *err, size_t err_size) {
    wg_tensor **slots = realloc(a->slots, sizeof *slots * (size_t)cap);
    if (!slots) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    a->slots = slots;
    for (int i = a->cap; i < cap; i++) slots[i] = NULL;
    WGPUBuffer buf = wg_buffer_create(c->dev, (uint64_t)cap * a->slot_bytes, a->half ? "kv cache (f16)" : "kv cache",
                                      err, err_size);
    if (!buf) return false;
    if (a->buf) {
        /* after the work recorded so far, which may still write the old buffer */
        if (!wgb_encoder_outside_pass(c)) {
            wg_buffer_free(c->dev, buf);
            snprintf(err, err_size, "%s", c->error);
            return false;
        }
        c->api->CommandEncoderCopyBufferToBuffer(c->enc, a->buf, 0, buf, 0, (uint64_t)a->cap * a->slot_bytes);
        wgb_flush(c);
        wgb_purge_bind_groups(c, a->id);
        wg_buffer_free(c->dev, a->buf);
        c->device_bytes -= (uint64_t)a->cap * a->slot_bytes;
    }
    a->buf = buf;
    a->id = ++c->next_id;
    a->cap = cap;
    c->device_bytes += (uint64_t)cap * a->slot_bytes;
    for (int i = 0; i < cap; i++)
        if (slots[i]) set_binding(a, slots[i], i);
    return true;
}

wg_tensor *wgb_kv_cache_create(wg_backend *b, int64_t ne0, int64_t ne1, int group, char *err, size_t err_size) {
    wgb_ctx *c = wgb_ctx_of(b);
    const bool half = c->kv_f16 && ne0 % 4 == 0; /* f16: half the memory and half the bytes attention reads */
    const uint64_t esize = half ? 2 : 4;
    if (ne0 <= 0 || ne1 <= 0 || (uint64_t)ne0 > UINT64_MAX / 4 / (uint64_t)ne1) {
        snprintf(err, err_size, "webgpu backend: bad KV cache shape [%lld, %lld]", (long long)ne0, (long long)ne1);
        return NULL;
    }
    const uint64_t bytes = wgb_round_up((uint64_t)ne0 * (uint64_t)ne1 * esize, 4);
    const uint64_t slot_bytes = wgb_round_up(bytes, c->offset_align);
    if (slot_bytes > c->binding_max || bytes / esize > UINT32_MAX) {
        snprintf(err, err_size,
                 "webgpu backend: a [%lld, %lld] %s KV cache (%llu bytes) exceeds the device's storage binding "
                 "limit of %llu bytes",
                 (long long)ne0, (long long)ne1, half ? "f16" : "f32", (unsigned long long)bytes,
                 (unsigned long long)c->binding_max);
        return NULL;
    }
    /* Kernels index the whole arena binding with 32-bit element offsets. */
    uint64_t max_slots = c->binding_max / slot_bytes;
    if (max_slots > UINT32_MAX / (slot_bytes / esize)) max_slots = UINT32_MAX / (slot_bytes / esize);
    if (max_slots < 1) max_slots = 1;

    wgb_kv_arena *a = NULL, *growable = NULL;
    for (wgb_kv_arena *p = c->kv_arenas; p && !a; p = p->next) {
        if (p->group != group || p->half != half || p->slot_bytes != slot_bytes) continue;
        if (p->used < p->cap) a = p;
        else if ((uint64_t)p->cap < max_slots && !growable) growable = p;
    }
    if (!a && growable) {
        uint64_t cap = (uint64_t)growable->cap * 2;
        if (cap > max_slots) cap = max_slots;
        if (!arena_grow(c, growable, (int)cap, err, err_size)) return NULL;
        a = growable;
    }
    if (!a) {
        a = calloc(1, sizeof *a);
        if (!a) {
            snprintf(err, err_size, "out of memory");
            return NULL;
        }
        a->group = group;
        a->half = half;
        a->slot_bytes = slot_bytes;
        if (!arena_grow(c, a, 1, err, err_size)) {
            free(a->slots);
            free(a);
            return NULL;
        }
        a->next = c->kv_arenas;
        c->kv_arenas = a;
    }
    int slot = 0;
    while (a->slots[slot]) slot++;
    wg_tensor *t = wgb_tensor_new(WG_TYPE_F32, ne0, ne1, 1);
    if (!t) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    wgb_tensor *wt = wgb_t(t);
    wt->half = half;
    wt->row_bytes = (size_t)((uint64_t)ne0 * esize);
    wt->parts[0].rows = ne1;
    wt->parts[0].bind.size = bytes;
    wt->arena = a;
    wt->arena_slot = slot;
    a->slots[slot] = t;
    a->used++;
    set_binding(a, t, slot);
    /* a reused slot still holds its last owner's rows: a new cache starts at zero */
    if (wgb_encoder_outside_pass(c))
        c->api->CommandEncoderClearBuffer(c->enc, a->buf, (uint64_t)slot * slot_bytes, slot_bytes);
    return t;
}

static void arena_free(wgb_ctx *c, wgb_kv_arena *a) {
    wgb_flush(c); /* recorded dispatches may use it */
    wgb_purge_bind_groups(c, a->id);
    wg_buffer_free(c->dev, a->buf);
    c->device_bytes -= (uint64_t)a->cap * a->slot_bytes;
    free(a->slots);
    free(a);
}

void wgb_kv_cache_release(wgb_ctx *c, wgb_tensor *wt) {
    wgb_kv_arena *a = wt->arena;
    a->slots[wt->arena_slot] = NULL;
    wt->arena = NULL;
    if (--a->used > 0) return;
    for (wgb_kv_arena **pp = &c->kv_arenas; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    arena_free(c, a);
}

void wgb_kv_arenas_destroy(wgb_ctx *c) {
    while (c->kv_arenas) {
        wgb_kv_arena *a = c->kv_arenas;
        c->kv_arenas = a->next;
        for (int i = 0; i < a->cap; i++)
            if (a->slots[i]) wgb_t(a->slots[i])->arena = NULL; /* handles outliving the backend */
        arena_free(c, a);
    }
}
