/* Greedy decoding without a CPU round trip per token: the argmax of step t goes into a
 * device id slot (one id per sequence of the step), step t+1's embedding lookup takes its
 * ids from there (a buffer copy into that dispatch's parameter block), and the ids are read
 * back through a mappable buffer per slot while step t+1 already runs. The GPU never waits
 * for the CPU between tokens, and the CPU records the next step while the GPU computes the
 * current one. */
#include <stdio.h>
#include <string.h>

#include "backend/webgpu/wgpu_internal.h"

#define GET_ROWS_IDS_OFFSET 32u /* byte offset of ids[0] in kernels/get_rows.wgsl's parameters */

static void on_slot_map(WGPUMapAsyncStatus status, WGPUStringView message, void *u1, void *u2) {
    (void)message;
    (void)u2;
    struct wgb_id_slot *s = u1;
    s->status = status;
    s->done = true;
}

static bool slot_ok(wgb_ctx *c, int slot, int n) {
    if (slot < 0 || slot >= WGB_ID_SLOTS || n < 1 || n > WGB_SLOT_IDS) {
        wgb_fail(c, "webgpu backend: id slot %d (%d ids) outside 0..%d (1..%d ids)", slot, n, WGB_ID_SLOTS - 1,
                 WGB_SLOT_IDS);
        return false;
    }
    return true;
}

static uint64_t slot_offset(const wgb_ctx *c, int slot) {
    return c->argmax_out.offset + 4u * (uint64_t)slot * WGB_SLOT_IDS;
}

/* False, with the failure recorded, when the device is gone: nothing recorded then runs. */
static bool device_ok(wgb_ctx *c) {
    if (c->dev->lost) wgb_fail(c, "WebGPU device lost: %s", c->dev->lost_message);
    return !c->dev->lost;
}

void wgb_op_argmax_to_slot(wg_backend *b, const wg_tensor *x, int64_t row, int slot, int pos) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (!slot_ok(c, slot, pos + 1) || !device_ok(c)) return;
    c->id_slots[slot].has_value = false; /* its old ids are no longer those asked for */
    int64_t local;
    const wgb_part *part = wgb_t(x)->weight ? NULL : wgb_part_of(x, row, &local); /* outputs may be split */
    if (!part) {
        wgb_fail(c, "webgpu backend: argmax of row %lld outside the tensor", (long long)row);
        return;
    }
    if (c->id_slots[slot].pending) {
        wgb_fail(c, "webgpu backend: id slot %d is still being read", slot);
        return;
    }
    uint32_t p[4] = {(uint32_t)(local * x->ne0), (uint32_t)x->ne0, (uint32_t)(slot * WGB_SLOT_IDS + pos), 0};
    wgb_bind bb[2] = {part->bind, c->argmax_out};
    wgb_dispatch(c, WGB_K_ARGMAX, p, sizeof p, bb, 1, 1);
}

void wgb_op_slot_read_start(wg_backend *b, int slot, int n) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (!slot_ok(c, slot, n) || !device_ok(c)) return;
    struct wgb_id_slot *s = &c->id_slots[slot];
    s->has_value = false;
    if (s->pending) {
        wgb_fail(c, "webgpu backend: id slot %d is still being read", slot);
        return;
    }
    if (!s->buf) {
        WGPUBufferDescriptor d = WGPU_BUFFER_DESCRIPTOR_INIT;
        d.label = wg_sv("id read-back");
        d.usage = WGPUBufferUsage_MapRead | WGPUBufferUsage_CopyDst;
        d.size = 4 * WGB_SLOT_IDS;
        s->buf = c->api->DeviceCreateBuffer(c->dev->device, &d);
        if (!s->buf) {
            wgb_fail(c, "WebGPU: cannot create an id read-back buffer");
            return;
        }
    }
    if (!wgb_encoder_outside_pass(c)) return;
    c->api->CommandEncoderCopyBufferToBuffer(c->enc, c->argmax_out.buf, slot_offset(c, slot), s->buf, 0,
                                             4u * (uint64_t)n);
    wgb_flush(c);
    s->done = false;
    s->pending = true;
    s->has_value = false;
    s->n = n;
    WGPUBufferMapCallbackInfo cb = {NULL, WGPUCallbackMode_AllowProcessEvents, on_slot_map, s, NULL};
    c->api->BufferMapAsync(s->buf, WGPUMapMode_Read, 0, 4u * (uint64_t)n, cb);
}

bool wgb_op_get_rows_from_slot(wg_backend *b, const wg_tensor *table, int slot, int n, wg_tensor *out) {
    wgb_ctx *c = wgb_ctx_of(b);
    const wgb_tensor *tt = wgb_t(table);
    const int fmt = wgb_format_of(table->type);
    /* The id picks the binding of a split table: only one-binding tables are done here. */
    if (!slot_ok(c, slot, n) || n > WGB_GET_ROWS_MAX_IDS || !tt->weight || fmt < 0 || tt->n_parts != 1 ||
        wgb_t(out)->weight || out->ne0 < table->ne0 || out->ne1 < n)
        return false;
    const wgb_pipeline *pl = &c->pl.k[WGB_K_GET_ROWS + fmt];
    if (c->n_slots + pl->param_slots > c->cap_slots || wgb_profile_full(c))
        wgb_flush(c); /* so that the dispatch below gets slot n_slots */
    if (!wgb_encoder_outside_pass(c)) return true; /* failure recorded */
    struct {
        uint32_t ne0, row_bytes, out_row0, n_ids, out_stride, pad[3];
        uint32_t ids[WGB_GET_ROWS_MAX_IDS];
    } prm;
    memset(&prm, 0, sizeof prm);
    prm.ne0 = (uint32_t)table->ne0;
    prm.row_bytes = (uint32_t)tt->row_bytes;
    prm.n_ids = (uint32_t)n;
    prm.out_stride = (uint32_t)out->ne0;
    /* ids[0..n) of the parameter slot this dispatch gets: filled on the GPU from the id slot,
     * after the queue has written the host's parameter block (it is written before the
     * command buffer runs). */
    uint64_t at = (uint64_t)c->n_slots * WGB_SLOT_BYTES + GET_ROWS_IDS_OFFSET;
    c->api->CommandEncoderCopyBufferToBuffer(c->enc, c->argmax_out.buf, slot_offset(c, slot), c->params, at,
                                             4u * (uint64_t)n);
    wgb_bind bb[2] = {tt->parts[0].bind, wgb_act(out)};
    wgb_dispatch(c, WGB_K_GET_ROWS + fmt, &prm, sizeof prm, bb, (uint32_t)n, 1);
    return true;
}

bool wgb_op_read_slot(wg_backend *b, int slot, int n, int32_t *ids) {
    wgb_ctx *c = wgb_ctx_of(b);
    if (!slot_ok(c, slot, n) || !device_ok(c)) return false;
    struct wgb_id_slot *s = &c->id_slots[slot];
    if (s->pending) {
        if (!wgb_wait_map(c, &s->done, "an id read-back")) return false;
        s->pending = false;
        bool read = false;
        if (s->status == WGPUMapAsyncStatus_Success) {
            const void *p = c->api->BufferGetConstMappedRange(s->buf, 0, 4u * (uint64_t)s->n);
            if (p) memcpy(s->value, p, 4u * (size_t)s->n), read = true;
            c->api->BufferUnmap(s->buf);
        }
        char err[512];
        if (!wg_device_check(c->dev, err, sizeof err)) {
            wgb_fail(c, "%s", err);
            return false;
        }
        if (!read) {
            wgb_fail(c, "WebGPU: id read-back failed (map status %d)", (int)s->status);
            return false;
        }
        s->has_value = true;
    }
    if (!s->has_value || n > s->n) {
        wgb_fail(c, "webgpu backend: id slot %d was not filled with %d ids", slot, n);
        return false;
    }
    /* a failure recorded since the ids were asked for makes them meaningless */
    if (c->failed) return false;
    memcpy(ids, s->value, sizeof *ids * (size_t)n);
    return true;
}

void wgb_id_slots_destroy(wgb_ctx *c) {
    for (int i = 0; i < WGB_ID_SLOTS; i++) {
        if (c->id_slots[i].buf) wg_buffer_free(c->dev, c->id_slots[i].buf);
        memset(&c->id_slots[i], 0, sizeof c->id_slots[i]);
    }
}
