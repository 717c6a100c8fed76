/* WebGPU backend: device and pipelines, tensors (weights sub-allocated in a few large
 * buffers, activations one buffer each), the recording of dispatches with their
 * parameter slots and cached bind groups, submission and read-back. The ops themselves
 * are in wgpu_ops.c. */
#include "backend/webgpu/wgpu_backend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/wgpu_autotune.h"
#include "backend/webgpu/wgpu_internal.h"
#include "quant/blocks.h"
#include "quant/types.h"

/* Parameter slots per submit; a forward step of a 7B model takes ~550. */
#define PARAM_SLOTS 4096u
/* Weight buffers grow from 16 MiB, doubling, up to 1 GiB (or maxBufferSize). */
#define POOL_FIRST_BYTES ((uint64_t)16 << 20)
#define POOL_MAX_BYTES ((uint64_t)1 << 30)
/* Wait for the queue after this many uploaded bytes, so staging copies are released. */
#define UPLOAD_WAIT_BYTES ((uint64_t)256 << 20)
/* On a CPU adapter (lavapipe, SwiftShader), attention of a sequence's step of this many tokens or
 * more takes the prompt kernel (attention_flash.wgsl): one tile of query rows of a head
 * (WGB_FA_ROWS); fewer tokens, as decode steps, take attention.wgsl with its split positions.
 * On a GPU the default is attention.wgsl for every step: on an H100 (2026-12-06) the flash
 * kernel made a 7B pp512 slower, 1,467 against 2,290 tok/s, where on lavapipe it is 2.3x faster
 * (bench/RESULTS.md). WGLLM_WEBGPU_FLASH_ATTN=N sets the threshold on any adapter. */
#define FLASH_MIN_TOKENS WGB_FA_ROWS

struct wgb_pool {
    wgb_bind bind; /* the whole buffer */
    uint64_t used;
    int refs;
    wgb_pool *next;
};

void wgb_fail(wgb_ctx *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
}


/* ------------------------------------------------------------ bind group cache */

static uint64_t hash_key(const uint64_t *key) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < 2 + 3 * WGB_MAX_STORAGE; i++) {
        h ^= key[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static bool index_rebuild(wgb_ctx *c, size_t cap) {
    int32_t *idx = malloc(cap * sizeof *idx);
    if (!idx) return false;
    for (size_t i = 0; i < cap; i++) idx[i] = -1;
    for (size_t e = 0; e < c->n_bgs; e++) {
        size_t h = (size_t)hash_key(c->bgs[e].key) & (cap - 1);
        while (idx[h] >= 0) h = (h + 1) & (cap - 1);
        idx[h] = (int32_t)e;
    }
    free(c->bg_index);
    c->bg_index = idx;
    c->index_cap = cap;
    return true;
}

static WGPUBindGroup bind_group_for(wgb_ctx *c, int k, const wgb_bind *binds) {
    const wgb_pipeline *p = &c->pl.k[k];
    wgb_bg_entry want;
    memset(&want, 0, sizeof want);
    want.key[0] = (uint64_t)k;
    want.key[1] = c->params_id;
    for (int i = 0; i < p->n_storage; i++) {
        want.key[2 + 3 * i] = binds[i].id;
        want.key[3 + 3 * i] = binds[i].offset;
        want.key[4 + 3 * i] = binds[i].size;
    }
    if (c->index_cap) {
        size_t h = (size_t)hash_key(want.key) & (c->index_cap - 1);
        for (; c->bg_index[h] >= 0; h = (h + 1) & (c->index_cap - 1)) {
            wgb_bg_entry *e = &c->bgs[c->bg_index[h]];
            if (memcmp(e->key, want.key, sizeof want.key) == 0) return e->bg;
        }
    }
    WGPUBindGroupEntry entries[1 + WGB_MAX_STORAGE];
    entries[0] = (WGPUBindGroupEntry)WGPU_BIND_GROUP_ENTRY_INIT;
    entries[0].binding = p->param_binding;
    entries[0].buffer = c->params;
    entries[0].offset = 0;
    entries[0].size = (uint64_t)p->param_slots * WGB_SLOT_BYTES;
    for (int i = 0; i < p->n_storage; i++) {
        entries[1 + i] = (WGPUBindGroupEntry)WGPU_BIND_GROUP_ENTRY_INIT;
        entries[1 + i].binding = p->first_storage + (uint32_t)i;
        entries[1 + i].buffer = binds[i].buf;
        entries[1 + i].offset = binds[i].offset;
        entries[1 + i].size = binds[i].size;
    }
    WGPUBindGroupDescriptor d = WGPU_BIND_GROUP_DESCRIPTOR_INIT;
    d.layout = p->layout;
    d.entryCount = (size_t)p->n_storage + 1;
    d.entries = entries;
    want.bg = c->api->DeviceCreateBindGroup(c->dev->device, &d);
    if (!want.bg) {
        wgb_fail(c, "WebGPU: cannot create a bind group");
        return NULL;
    }
    if (c->n_bgs == c->cap_bgs) {
        size_t cap = c->cap_bgs ? c->cap_bgs * 2 : 256;
        wgb_bg_entry *nb = realloc(c->bgs, cap * sizeof *nb);
        if (!nb) { /* uncached: released at the next purge is not possible, so give up */
            c->api->BindGroupRelease(want.bg);
            wgb_fail(c, "WebGPU: out of memory for bind groups");
            return NULL;
        }
        c->bgs = nb;
        c->cap_bgs = cap;
    }
    c->bgs[c->n_bgs++] = want;
    if (c->n_bgs * 2 > c->index_cap) {
        if (!index_rebuild(c, c->index_cap ? c->index_cap * 2 : 512)) {
            wgb_fail(c, "WebGPU: out of memory for bind groups");
            return NULL;
        }
    } else {
        size_t h = (size_t)hash_key(want.key) & (c->index_cap - 1);
        while (c->bg_index[h] >= 0) h = (h + 1) & (c->index_cap - 1);
        c->bg_index[h] = (int32_t)(c->n_bgs - 1);
    }
    return want.bg;
}

/* Drops the cached bind groups that use buffer `id` (before the buffer goes away). */
void wgb_purge_bind_groups(wgb_ctx *c, uint64_t id) {
    size_t kept = 0;
    for (size_t e = 0; e < c->n_bgs; e++) {
        bool uses = false;
        for (int i = 0; i < WGB_MAX_STORAGE; i++) uses |= c->bgs[e].key[2 + 3 * i] == id;
        if (uses) c->api->BindGroupRelease(c->bgs[e].bg);
        else c->bgs[kept++] = c->bgs[e];
    }
    if (kept == c->n_bgs) return;
    c->n_bgs = kept;
    if (c->index_cap && !index_rebuild(c, c->index_cap)) {
        free(c->bg_index); /* lookups fall back to creating new groups */
        c->bg_index = NULL;
        c->index_cap = 0;
    }
}

/* ------------------------------------------------------------ recording */

void wgb_flush(wgb_ctx *c) {
    if (!c->enc) return;
    const double t_host = c->prof.host ? wgb_now_ns() : 0;
    const wg_wgpu *api = c->api;
    if (c->pass) {
        api->ComputePassEncoderEnd(c->pass);
        api->ComputePassEncoderRelease(c->pass);
        c->pass = NULL;
    }
    wgb_profile_before_finish(c, c->enc);
    WGPUCommandBuffer cmd = api->CommandEncoderFinish(c->enc, NULL);
    api->CommandEncoderRelease(c->enc);
    c->enc = NULL;
    if (c->n_slots) api->QueueWriteBuffer(c->dev->queue, c->params, 0, c->slots, (size_t)c->n_slots * WGB_SLOT_BYTES);
    c->n_slots = 0;
    c->n_recorded = 0;
    if (cmd) {
        api->QueueSubmit(c->dev->queue, 1, &cmd);
        api->CommandBufferRelease(cmd);
        c->submitted++;
        wgb_profile_after_submit(c);
    } else {
        wgb_fail(c, "WebGPU: cannot finish a command buffer");
    }
    if (c->prof.host) wgb_profile_host(c, WGB_HOST_SUBMIT, t_host);
}

static bool ensure_encoder(wgb_ctx *c) {
    if (!c->enc) c->enc = c->api->DeviceCreateCommandEncoder(c->dev->device, NULL);
    if (!c->enc) wgb_fail(c, "WebGPU: cannot create a command encoder");
    return c->enc != NULL;
}

bool wgb_encoder_outside_pass(wgb_ctx *c) {
    if (!ensure_encoder(c)) return false;
    if (c->pass) {
        c->api->ComputePassEncoderEnd(c->pass);
        c->api->ComputePassEncoderRelease(c->pass);
        c->pass = NULL;
    }
    return true;
}

static bool ensure_pass(wgb_ctx *c) {
    if (c->pass) return true;
    if (!ensure_encoder(c)) return false;
    c->pass = wgb_profile_begin_pass(c, -1);
    if (!c->pass) wgb_fail(c, "WebGPU: cannot begin a compute pass");
    return c->pass != NULL;
}

void wgb_dispatch(wgb_ctx *c, int k, const void *params, size_t param_bytes, const wgb_bind *binds, uint32_t gx,
                  uint32_t gy) {
    if (c->dev->lost || gx == 0 || gy == 0) return;
    const wgb_pipeline *p = &c->pl.k[k];
    /* A kernel writing the activation whose int8 copy is cached makes that copy stale. */
    for (int i = 0; i < p->n_storage; i++)
        if (p->written >> i & 1u) wgb_q8_forget(c, binds[i].id);
    if (c->n_slots + p->param_slots > c->cap_slots || wgb_profile_full(c)) wgb_flush(c);
    const double t_host = c->prof.host ? wgb_now_ns() : 0;
    WGPUBindGroup bg = bind_group_for(c, k, binds);
    if (!bg) return;
    const bool own_pass = c->prof.mode == 1; /* profiling each dispatch */
    if (own_pass) {
        if (c->pass) {
            c->api->ComputePassEncoderEnd(c->pass);
            c->api->ComputePassEncoderRelease(c->pass);
            c->pass = NULL;
        }
        if (!ensure_encoder(c)) return;
        c->pass = wgb_profile_begin_pass(c, k);
    }
    if (!ensure_pass(c)) return;
    uint32_t slot = c->n_slots;
    c->n_slots += p->param_slots;
    uint8_t *dst = c->slots + (size_t)slot * WGB_SLOT_BYTES;
    memset(dst, 0, (size_t)p->param_slots * WGB_SLOT_BYTES);
    memcpy(dst, params, param_bytes);
    uint32_t dyn = slot * WGB_SLOT_BYTES;
    const wg_wgpu *api = c->api;
    api->ComputePassEncoderSetPipeline(c->pass, p->pipe);
    api->ComputePassEncoderSetBindGroup(c->pass, 0, bg, 1, &dyn);
    api->ComputePassEncoderDispatchWorkgroups(c->pass, gx, gy, 1);
    c->dispatched[k]++;
    if (own_pass) {
        api->ComputePassEncoderEnd(c->pass);
        api->ComputePassEncoderRelease(c->pass);
        c->pass = NULL;
    }
    if (c->prof.host) wgb_profile_host(c, WGB_HOST_RECORD, t_host);
    if (c->submit_every && ++c->n_recorded >= c->submit_every) wgb_flush(c);
}

void wgb_dispatch_linear(wgb_ctx *c, int k, const void *params, size_t param_bytes, const wgb_bind *binds,
                         uint64_t groups) {
    if (groups == 0) return;
    uint64_t gx = groups < c->max_groups ? groups : c->max_groups;
    uint64_t gy = (groups + gx - 1) / gx;
    if (gy > c->max_groups) {
        wgb_fail(c, "WebGPU: %llu workgroups exceed the device's dispatch limit", (unsigned long long)groups);
        return;
    }
    wgb_dispatch(c, k, params, param_bytes, binds, (uint32_t)gx, (uint32_t)gy);
}

/* ------------------------------------------------------------ read-back */

static void on_map(WGPUMapAsyncStatus status, WGPUStringView message, void *u1, void *u2) {
    wgb_ctx *c = u1;
    c->map_status = status;
    c->map_done = true;
}

bool wgb_wait_map(wgb_ctx *c, bool *done, const char *what) {
    char err[1024];
    const double t_host = c->prof.host ? wgb_now_ns() : 0;
    const bool waited = wg_device_wait(c->dev, done, WG_GPU_WAIT_TIMEOUT_MS, what, err, sizeof err);
    if (c->prof.host) wgb_profile_host(c, WGB_HOST_WAIT, t_host);
    if (!waited) {
        wgb_fail(c, "%s", err);
        c->dev->lost = true; /* the map is still pending: the buffer cannot be reused */
        snprintf(c->dev->lost_message, sizeof c->dev->lost_message, "%s", err);
    }
    return waited;
}

bool wgb_read(wgb_ctx *c, const wgb_bind *src, uint64_t offset, void *dst, uint64_t size) {
    if (c->dev->lost) {
        wgb_fail(c, "%s", c->dev->lost_message);
        return false;
    }
    const wg_wgpu *api = c->api;
    uint64_t bytes = wgb_round_up(size ? size : 4, 4);
    if (bytes > c->readback_bytes) {
        if (c->readback) {
            api->BufferDestroy(c->readback);
            api->BufferRelease(c->readback);
        }
        uint64_t want = bytes < 65536 ? 65536 : wgb_round_up(bytes, 65536);
        WGPUBufferDescriptor d = WGPU_BUFFER_DESCRIPTOR_INIT;
        d.label = wg_sv("read-back");
        d.usage = WGPUBufferUsage_MapRead | WGPUBufferUsage_CopyDst;
        d.size = want;
        c->readback = api->DeviceCreateBuffer(c->dev->device, &d);
        c->readback_bytes = c->readback ? want : 0;
        if (!c->readback) {
            wgb_fail(c, "WebGPU: cannot create a %llu-byte read-back buffer", (unsigned long long)want);
            return false;
        }
    }
    if (!ensure_encoder(c)) return false;
    if (c->pass) {
        api->ComputePassEncoderEnd(c->pass);
        api->ComputePassEncoderRelease(c->pass);
        c->pass = NULL;
    }
    api->CommandEncoderCopyBufferToBuffer(c->enc, src->buf, src->offset + offset, c->readback, 0, bytes);
    wgb_flush(c);
    c->map_done = false;
    WGPUBufferMapCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_map, c, NULL};
    api->BufferMapAsync(c->readback, WGPUMapMode_Read, 0, (size_t)bytes, cb);
    if (!wgb_wait_map(c, &c->map_done, "a read-back")) return false;
    bool ok = c->map_status == WGPUMapAsyncStatus_Success;
    if (ok) {
        const void *p = api->BufferGetConstMappedRange(c->readback, 0, (size_t)bytes);
        if (p) memcpy(dst, p, (size_t)size);
        else ok = false;
        api->BufferUnmap(c->readback);
    }
    char err[1024];
    if (!wg_device_check(c->dev, err, sizeof err)) {
        wgb_fail(c, "%s", err);
        return false;
    }
    if (!ok) wgb_fail(c, "WebGPU: read-back failed (map status %d)", (int)c->map_status);
    return ok;
}

bool wgb_scratch(wgb_ctx *c, int slot, uint64_t bytes, wgb_bind *out) {
    wgb_bind *s = &c->scratch[slot];
    bytes = wgb_round_up(bytes ? bytes : 4, 256);
    if (s->size < bytes) {
        /* the new buffer holds nothing */
        if (slot == WGB_SCRATCH_XQ || slot == WGB_SCRATCH_XS) c->q8[WGB_Q8_SLOT_X].id = 0;
        if (slot == WGB_SCRATCH_XQ_H || slot == WGB_SCRATCH_XS_H) c->q8[WGB_Q8_SLOT_HIDDEN].id = 0;
        if (s->buf) {
            wgb_flush(c); /* recorded work may still use the old one */
            wgb_purge_bind_groups(c, s->id);
            wg_buffer_free(c->dev, s->buf);
            memset(s, 0, sizeof *s);
        }
        char err[512];
        s->buf = wg_buffer_create(c->dev, bytes, "scratch", err, sizeof err);
        if (!s->buf) {
            wgb_fail(c, "%s", err);
            return false;
        }
        s->id = ++c->next_id;
        s->size = bytes;
    }
    *out = *s;
    return true;
}

void wgb_q8_forget(wgb_ctx *c, uint64_t id) {
    for (int i = 0; i < WGB_Q8_SLOTS; i++)
        if (id && c->q8[i].id == id) c->q8[i].id = 0;
}

void wgb_q8_forget_all(wgb_ctx *c) {
    for (int i = 0; i < WGB_Q8_SLOTS; i++) c->q8[i].id = 0;
}

/* ------------------------------------------------------------ tensors */

wg_tensor *wgb_tensor_new(uint32_t type, int64_t ne0, int64_t ne1, int n_parts) {
    wg_tensor *t = calloc(1, sizeof *t + sizeof(wgb_tensor) + (size_t)n_parts * sizeof(wgb_part));
    if (!t) return NULL;
    t->type = type;
    t->ne0 = ne0;
    t->ne1 = ne1;
    wgb_tensor *wt = (wgb_tensor *)(t + 1);
    wt->n_parts = n_parts;
    wt->parts = (wgb_part *)(wt + 1);
    t->impl = wt;
    return t;
}

/* A range of `bytes` in a weight buffer, at an offset a binding may start at. */
static wgb_pool *pool_alloc(wgb_ctx *c, uint64_t bytes, uint64_t *offset, char *err, size_t err_size) {
    for (wgb_pool *p = c->pools; p; p = p->next) {
        uint64_t off = wgb_round_up(p->used, c->offset_align);
        if (off <= p->bind.size && bytes <= p->bind.size - off) {
            p->used = off + bytes;
            *offset = off;
            return p;
        }
    }
    uint64_t size = c->next_pool_bytes > c->pool_cap ? c->pool_cap : c->next_pool_bytes;
    if (size < bytes) size = bytes;
    wgb_pool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    p->bind.buf = wg_buffer_create(c->dev, size, "weights", err, err_size);
    if (!p->bind.buf) {
        free(p);
        return NULL;
    }
    p->bind.id = ++c->next_id;
    p->bind.size = size;
    c->device_bytes += size;
    p->used = bytes;
    p->next = c->pools;
    c->pools = p;
    if (c->next_pool_bytes < c->pool_cap) c->next_pool_bytes *= 2;
    *offset = 0;
    return p;
}

static void pool_release(wgb_ctx *c, wgb_pool *p) {
    if (--p->refs > 0) return;
    for (wgb_pool **pp = &c->pools; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    wgb_purge_bind_groups(c, p->bind.id);
    wg_buffer_free(c->dev, p->bind.buf);
    c->device_bytes -= p->bind.size;
    free(p);
}

/* Uploads bytes that need not be a multiple of 4 (the binding is padded). */
static bool upload(wgb_ctx *c, const wgb_bind *dst, const uint8_t *src, uint64_t bytes, char *err, size_t err_size) {
    uint64_t body = bytes & ~(uint64_t)3;
    if (body && !wg_buffer_write(c->dev, dst->buf, dst->offset, src, (size_t)body, err, err_size)) return false;
    if (bytes > body) {
        uint8_t tail[4] = {0};
        memcpy(tail, src + body, (size_t)(bytes - body));
        if (!wg_buffer_write(c->dev, dst->buf, dst->offset + body, tail, 4, err, err_size)) return false;
    }
    c->uploaded += bytes;
    if (c->uploaded >= UPLOAD_WAIT_BYTES) {
        c->uploaded = 0;
        c->api->QueueSubmit(c->dev->queue, 0, NULL); /* pushes the queued writes */
        if (!wg_device_finish(c->dev, err, err_size)) return false;
    }
    return true;
}

static void tensor_free(wg_backend *b, wg_tensor *t) {
    if (!t) return;
    wgb_ctx *c = wgb_ctx_of(b);
    wgb_tensor *wt = wgb_t(t);
    wgb_flush(c); /* recorded dispatches may use it */
    if (wt->arena) {
        wgb_kv_cache_release(c, wt);
        free(t);
        return;
    }
    for (int i = 0; i < wt->n_parts; i++) {
        wgb_part *p = &wt->parts[i];
        if (wt->weight) {
            if (p->pool) pool_release(c, p->pool);
        } else if (p->bind.buf) {
            wgb_purge_bind_groups(c, p->bind.id);
            wg_buffer_free(c->dev, p->bind.buf);
            c->device_bytes -= p->bind.size;
        }
    }
    free(t);
}

static wg_tensor *weight_create(wg_backend *b, uint32_t type, int64_t ne0, int64_t ne1, const void *data, char *err,
                                size_t err_size) {
    wgb_ctx *c = wgb_ctx_of(b);
    size_t rb = wg_type_row_bytes(type, ne0);
    if (wgb_format_of(type) < 0) {
        snprintf(err, err_size, "webgpu backend: weights of type %s are not supported",
                 wg_type_name(type) ? wg_type_name(type) : "unknown");
        return NULL;
    }
    if (rb == 0 || ne1 <= 0 || !data) {
        snprintf(err, err_size, "webgpu backend: bad weight shape [%lld, %lld] for type %s", (long long)ne0,
                 (long long)ne1, wg_type_name(type));
        return NULL;
    }
    /* the matmul and int8 kernels of the weight's format, with its first weight */
    const int f8 = wgb_q8_format_of(type);
    if (!wgb_pipelines_add_format(c->dev, &c->pl, wgb_format_of(type), err, err_size)) return NULL;
    if (c->q4_int8 && f8 >= 0 && !wgb_pipelines_add_q8(c->dev, &c->pl, f8, err, err_size)) return NULL;
    uint64_t max_bytes = c->split_binding_max & ~(uint64_t)3;
    int64_t rows_per_part = (int64_t)(max_bytes / rb);
    if (rows_per_part < 1) {
        snprintf(err, err_size, "webgpu backend: a weight row of %zu bytes exceeds the %llu-byte binding limit", rb,
                 (unsigned long long)max_bytes);
        return NULL;
    }
    int64_t n_parts = (ne1 + rows_per_part - 1) / rows_per_part;
    if (n_parts > 1 << 20) {
        snprintf(err, err_size, "webgpu backend: weight [%lld, %lld] needs too many bindings", (long long)ne0,
                 (long long)ne1);
        return NULL;
    }
    wg_tensor *t = wgb_tensor_new(type, ne0, ne1, (int)n_parts);
    if (!t) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    wgb_tensor *wt = wgb_t(t);
    wt->weight = true;
    wt->row_bytes = rb;
    wt->n_parts = 0; /* counts the parts made so far, for tensor_free on failure */
    for (int64_t i = 0; i < n_parts; i++) {
        wgb_part *p = &wt->parts[i];
        p->row0 = i * rows_per_part;
        p->rows = ne1 - p->row0 < rows_per_part ? ne1 - p->row0 : rows_per_part;
        uint64_t bytes = (uint64_t)p->rows * rb;
        uint64_t off;
        p->pool = pool_alloc(c, wgb_round_up(bytes, 4), &off, err, err_size);
        if (!p->pool) {
            tensor_free(b, t);
            return NULL;
        }
        p->pool->refs++;
        wt->n_parts++;
        p->bind = p->pool->bind;
        p->bind.offset = off;
        p->bind.size = wgb_round_up(bytes, 4);
        if (!upload(c, &p->bind, (const uint8_t *)data + (size_t)p->row0 * rb, bytes, err, err_size)) {
            tensor_free(b, t);
            return NULL;
        }
    }
    return t;
}

/* An f32 activation (KV caches live in arenas: wgpu_kv_cache.c): one binding, or with
 * `split` (outputs) bindings of at most split_binding_max bytes, each of whole rows. */
static wg_tensor *activation_create(wg_backend *b, int64_t ne0, int64_t ne1, bool split, char *err,
                                    size_t err_size) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (ne0 <= 0 || ne1 <= 0 || (uint64_t)ne0 > UINT64_MAX / 4 / (uint64_t)ne1) {
        snprintf(err, err_size, "webgpu backend: bad buffer shape [%lld, %lld]", (long long)ne0, (long long)ne1);
        return NULL;
    }
    /* Kernels index activations with 32-bit element offsets. */
    const uint64_t rb = (uint64_t)ne0 * 4, max_bytes = split ? c->split_binding_max : c->binding_max;
    const uint64_t limit = max_bytes < 4ull * UINT32_MAX ? max_bytes : 4ull * UINT32_MAX;
    const int64_t rows_per_part = split ? (int64_t)(limit / rb) : ne1;
    if (rows_per_part < 1 || (uint64_t)rows_per_part * rb > limit) {
        snprintf(err, err_size,
                 "webgpu backend: a [%lld, %lld] f32 buffer (%llu bytes) exceeds the device's storage binding "
                 "limit of %llu bytes",
                 (long long)ne0, (long long)(split ? 1 : ne1), (unsigned long long)(rb * (split ? 1 : (uint64_t)ne1)),
                 (unsigned long long)max_bytes);
        return NULL;
    }
    const int64_t n_parts = (ne1 + rows_per_part - 1) / rows_per_part;
    if (n_parts > 1 << 20) {
        snprintf(err, err_size, "webgpu backend: buffer [%lld, %lld] needs too many bindings", (long long)ne0,
                 (long long)ne1);
        return NULL;
    }
    wg_tensor *t = wgb_tensor_new(WG_TYPE_F32, ne0, ne1, (int)n_parts);
    if (!t) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    wgb_tensor *wt = wgb_t(t);
    wt->row_bytes = (size_t)rb;
    for (int64_t i = 0; i < n_parts; i++) {
        wgb_part *p = &wt->parts[i];
        p->row0 = i * rows_per_part;
        p->rows = ne1 - p->row0 < rows_per_part ? ne1 - p->row0 : rows_per_part;
        const uint64_t bytes = (uint64_t)p->rows * rb;
        p->bind.buf = wg_buffer_create(c->dev, bytes, split ? "outputs" : "activations", err, err_size);
        if (!p->bind.buf) {
            tensor_free(b, t); /* frees the parts made so far */
            return NULL;
        }
        p->bind.id = ++c->next_id;
        p->bind.size = bytes;
        c->device_bytes += bytes;
    }
    return t;
}

static wg_tensor *buffer_create(wg_backend *b, int64_t ne0, int64_t ne1, char *err, size_t err_size) {
    return activation_create(b, ne0, ne1, false, err, err_size);
}

static wg_tensor *output_create(wg_backend *b, int64_t ne0, int64_t ne1, char *err, size_t err_size) {
    return activation_create(b, ne0, ne1, true, err, err_size);
}

static bool rows_ok(wgb_ctx *c, const wg_tensor *t, int64_t row0, int64_t n, const char *op) {
    if (!t || wgb_t(t)->weight || row0 < 0 || n < 0 || row0 > t->ne1 || n > t->ne1 - row0) {
        wgb_fail(c, "webgpu backend: %s of rows [%lld, +%lld) is outside the tensor", op, (long long)row0,
                 (long long)n);
        return false;
    }
    return true;
}

/* Rows [row0, row0 + n) of one part of t (outputs may have several). */
static void write_part(wgb_ctx *c, const wg_tensor *t, const wgb_part *part, int64_t row0, int64_t n,
                       const float *src) {
    wgb_q8_forget(c, part->bind.id);
    char err[512];
    wgb_bind d = part->bind;
    const size_t bytes = (size_t)n * wgb_t(t)->row_bytes;
    void *h = NULL;
    if (wgb_t(t)->half) { /* an f16 tensor: rounded on the host (row bytes are even) */
        if (!(h = malloc(bytes + 2))) {
            wgb_fail(c, "out of memory");
            return;
        }
        wg_f16_quantize(src, h, (int64_t)n * t->ne0);
        src = h;
    }
    if (!wg_buffer_write(c->dev, d.buf, d.offset + (uint64_t)row0 * wgb_t(t)->row_bytes, src, bytes, err, sizeof err))
        wgb_fail(c, "%s", err);
    free(h);
}

static void write_rows(wg_backend *b, wg_tensor *t, int64_t row0, int64_t n, const float *src) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (!rows_ok(c, t, row0, n, "write") || n == 0) return;
    wgb_flush(c); /* queue order: earlier ops see the old rows, later ones the new */
    for (int64_t local = 0, k; n > 0; row0 += k, n -= k, src += k * t->ne0) {
        const wgb_part *p = wgb_part_of(t, row0, &local);
        k = n < p->rows - local ? n : p->rows - local;
        write_part(c, t, p, local, k, src);
    }
}

static void read_part(wgb_ctx *c, const wg_tensor *t, const wgb_part *part, int64_t row0, int64_t n, float *dst) {
    wgb_bind s = part->bind;
    size_t rb = wgb_t(t)->row_bytes;
    if (!wgb_t(t)->half) {
        wgb_read(c, &s, (uint64_t)row0 * rb, dst, (uint64_t)n * rb);
        return;
    }
    uint8_t *h = malloc((size_t)n * rb);
    if (!h) {
        wgb_fail(c, "out of memory");
        return;
    }
    if (wgb_read(c, &s, (uint64_t)row0 * rb, h, (uint64_t)n * rb)) wg_f16_dequantize(h, dst, (int64_t)n * t->ne0);
    free(h);
}

static void read_rows(wg_backend *b, const wg_tensor *t, int64_t row0, int64_t n, float *dst) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (!rows_ok(c, t, row0, n, "read") || n == 0) return;
    for (int64_t local = 0, k; n > 0; row0 += k, n -= k, dst += k * t->ne0) {
        const wgb_part *p = wgb_part_of(t, row0, &local);
        k = n < p->rows - local ? n : p->rows - local;
        read_part(c, t, p, local, k, dst);
    }
}

static bool synchronize(wg_backend *b) {
    wgb_ctx *c = wgb_ctx_of(b);
    wgb_flush(c);
    char err[1024];
    if (!wg_device_finish(c->dev, err, sizeof err)) wgb_fail(c, "%s", err);
    bool ok = !c->failed;
    if (!ok) wgb_q8_forget_all(c); /* a failed step may have skipped the quantize dispatch */
    c->failed = false;
    return ok;
}

static const char *error_of(const wg_backend *b) { return wgb_ctx_of(b)->error; }

static uint64_t device_memory(const wg_backend *b) { return wgb_ctx_of(b)->device_bytes; }

static void destroy(wg_backend *b) {
    if (!b) return;
    wgb_ctx *c = b->ctx;
    if (c) {
        if (c->dev) {
            char err[256];
            wgb_flush(c);
            wg_device_finish(c->dev, err, sizeof err);
            wgb_profile_report(c);
            wgb_profile_destroy(c);
            wgb_autotune_free(c);
            wgb_kv_arenas_destroy(c);
            for (size_t i = 0; i < c->n_bgs; i++) c->api->BindGroupRelease(c->bgs[i].bg);
            while (c->pools) {
                wgb_pool *p = c->pools;
                c->pools = p->next;
                wg_buffer_free(c->dev, p->bind.buf);
                free(p);
            }
            for (int i = 0; i < WGB_SCRATCH_COUNT; i++) wg_buffer_free(c->dev, c->scratch[i].buf);
            wgb_id_slots_destroy(c);
            wg_buffer_free(c->dev, c->argmax_out.buf);
            wg_buffer_free(c->dev, c->readback);
            wg_buffer_free(c->dev, c->params);
            wgb_pipelines_destroy(c->dev, &c->pl);
            wg_device_destroy(c->dev);
        }
        if (c->gpu) wg_gpu_close(c->gpu);
        free(c->bgs);
        free(c->bg_index);
        free(c->slots);
        free(c);
    }
    free(b);
}

static const wg_backend_ops k_webgpu_ops = {
    .name = "webgpu",
    .weights_reference_host = false,
    .batch_hint = 512,
    .kernels_at_first_use = true,
    .destroy = destroy,
    .weight_create = weight_create,
    .buffer_create = buffer_create,
    .output_create = output_create,
    .kv_cache_create = wgb_kv_cache_create,
    .tensor_free = tensor_free,
    .write_rows = write_rows,
    .read_rows = read_rows,
    .get_rows = wgb_op_get_rows,
    .copy_rows = wgb_op_copy_rows,
    .rms_norm = wgb_op_rms_norm,
    .matmul = wgb_op_matmul,
    .rope = wgb_op_rope,
    .kv_store = wgb_op_kv_store,
    .attention = wgb_op_attention,
    .swiglu = wgb_op_swiglu,
    .add = wgb_op_add,
    .argmax = wgb_op_argmax,
    .argmax_rows = wgb_op_argmax_rows,
    .argmax_to_slot = wgb_op_argmax_to_slot,
    .slot_read_start = wgb_op_slot_read_start,
    .get_rows_from_slot = wgb_op_get_rows_from_slot,
    .read_slot = wgb_op_read_slot,
    .synchronize = synchronize,
    .error = error_of,
    .device_memory = device_memory,
    .layer = wgb_op_layer,
    .layer_without_up = true,
};

/* WGLLM_WEBGPU_MAX_BINDING: a smaller limit for split bindings, so tests can split weights and outputs. */
static uint64_t binding_override(uint64_t device_max) {
    const char *v = getenv("WGLLM_WEBGPU_MAX_BINDING");
    if (!v || !*v) return device_max;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x < 4 || x > device_max) return device_max;
    return x & ~3ull;
}

/* A count from the environment (unset or malformed: the default). */
static uint32_t env_uint(const char *name, uint32_t dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    return errno || *end || x > 1000000 ? dflt : (uint32_t)x;
}

/* An on/off switch from the environment: "0" is off, anything else on, unset the default. */
static bool env_flag(const char *name, bool dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    return strcmp(v, "0") != 0;
}

wg_backend *wg_backend_webgpu_create(int adapter_index, char *err, size_t err_size) {
    wg_backend *b = calloc(1, sizeof *b);
    wgb_ctx *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    b->ops = &k_webgpu_ops;
    b->ctx = c;
    c->gpu = wg_gpu_open(NULL, err, err_size);
    if (!c->gpu) goto fail;
    if (c->gpu->n_adapters == 0) {
        snprintf(err, err_size,
                 "WebGPU: no adapter found (library '%s'; without a GPU install Mesa's Vulkan drivers: "
                 "scripts/install-webgpu.sh)",
                 c->gpu->api.path);
        goto fail;
    }
    c->dev = wg_device_create(c->gpu, adapter_index < 0 ? 0 : adapter_index, err, err_size);
    if (!c->dev) goto fail;
    c->api = c->dev->api;
    const wg_gpu_limits *l = &c->dev->limits;
    c->binding_max = l->max_storage_buffer_binding_size & ~(uint64_t)3;
    c->split_binding_max = binding_override(c->binding_max);
    c->offset_align = l->min_storage_buffer_offset_alignment ? l->min_storage_buffer_offset_alignment : 256;
    c->max_groups = l->max_compute_workgroups_per_dimension ? l->max_compute_workgroups_per_dimension : 65535;
    c->pool_cap = l->max_buffer_size < POOL_MAX_BYTES ? l->max_buffer_size : POOL_MAX_BYTES;
    c->next_pool_bytes = POOL_FIRST_BYTES;
    if (l->max_compute_invocations_per_workgroup < 256 || l->max_compute_workgroup_storage_size < 16384) {
        snprintf(err, err_size, "WebGPU: the device allows %u invocations and %u bytes of workgroup memory; "
                 "the kernels need 256 and 16384", l->max_compute_invocations_per_workgroup,
                 l->max_compute_workgroup_storage_size);
        goto fail;
    }
    c->q4_int8 = env_flag("WGLLM_WEBGPU_Q4_INT8", true);
    c->kv_f16 = c->dev->features.shader_f16 && env_flag("WGLLM_WEBGPU_KV_F16", true);
    const bool cpu_adapter = c->gpu->info[c->dev->adapter_index].type == WGPUAdapterType_CPU;
    c->flash_min_tokens = env_uint("WGLLM_WEBGPU_FLASH_ATTN", cpu_adapter ? FLASH_MIN_TOKENS : 0);
    if (!wgb_pipelines_create(c->dev, c->dev->features.subgroups && env_flag("WGLLM_WEBGPU_SUBGROUPS", true), c->kv_f16, &c->pl,
                              err, err_size))
        goto fail;

    wgb_profile_init(c);
    c->cap_slots = PARAM_SLOTS;
    c->submit_every = env_uint("WGLLM_WEBGPU_SUBMIT_EVERY", 0); /* experiments; wgpu_layer.c flushes */
    c->slots = calloc(c->cap_slots, WGB_SLOT_BYTES);
    WGPUBufferDescriptor pd = WGPU_BUFFER_DESCRIPTOR_INIT;
    pd.label = wg_sv("op parameters");
    pd.usage = WGPUBufferUsage_Uniform | WGPUBufferUsage_CopyDst;
    pd.size = (uint64_t)c->cap_slots * WGB_SLOT_BYTES;
    c->params = c->slots ? c->api->DeviceCreateBuffer(c->dev->device, &pd) : NULL;
    c->params_id = ++c->next_id;
    c->argmax_out.buf = wg_buffer_create(c->dev, WGB_ARGMAX_BYTES, "argmax", err, err_size);
    c->argmax_out.id = ++c->next_id;
    c->argmax_out.size = WGB_ARGMAX_BYTES;
    if (!c->params || !c->argmax_out.buf) {
        if (!c->argmax_out.buf) goto fail;
        snprintf(err, err_size, "WebGPU: cannot create the parameter buffer");
        goto fail;
    }
    if (!wg_device_check(c->dev, err, err_size)) goto fail;
    return b;
fail:
    destroy(b);
    return NULL;
}
