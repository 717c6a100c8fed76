/* The model's layers as the backends run them (backend/layer.h), made once at load. */
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"

bool wg_layer_descs_build(wgllm_model *m, char *err, size_t err_size) {
    const wg_hparams *hp = &m->hp;
    free(m->layer_descs);
    if (!(m->layer_descs = calloc((size_t)hp->n_layer, sizeof *m->layer_descs))) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        const wg_layer *L = &m->layers[l];
        m->layer_descs[l] = (wg_layer_desc){
            .index = l,
            .n_embd = hp->n_embd,
            .n_head = hp->n_head,
            .n_head_kv = hp->n_head_kv,
            .head_dim = hp->head_dim,
            .n_ff = hp->n_ff,
            .norm_eps = hp->norm_eps,
            .rope = {.dims = hp->rope_dims,
                     .neox = hp->rope_neox,
                     .base = hp->rope_base,
                     .scale = hp->rope_scale,
                     .factors = m->rope_factors},
            .swa_window = hp->swa_window,
            .attn_norm = L->attn_norm,
            .wq = L->wq,
            .wk = L->wk,
            .wv = L->wv,
            .wo = L->wo,
            .bq = L->bq,
            .bk = L->bk,
            .bv = L->bv,
            .q_norm = L->q_norm,
            .k_norm = L->k_norm,
            .ffn_norm = L->ffn_norm,
            .w_gate = L->w_gate,
            .w_up = L->w_up,
            .w_down = L->w_down,
        };
    }
    return true;
}
