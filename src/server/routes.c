/* Small routes: health, readiness, models, metrics, tokenizer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/json_strict.h"
#include "server/server_internal.h"

enum MHD_Result srv_route_health(srv_conn *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    return srv_reply_json(c, 200, o);
}

enum MHD_Result srv_route_ready(srv_conn *c) {
    bool draining = atomic_load(&c->srv->draining);
    srv_model *m = srv_models_acquire(&c->srv->models);
    bool ready = m && !draining;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", ready ? "ready" : draining ? "draining" : "loading");
    if (m) cJSON_AddStringToObject(o, "model", m->id);
    srv_models_release(&c->srv->models, m);
    return srv_reply_json(c, ready ? 200 : 503, o);
}

enum MHD_Result srv_route_models(srv_conn *c) {
    srv_model *m = srv_models_acquire(&c->srv->models);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", m->id);
    cJSON_AddStringToObject(e, "object", "model");
    cJSON_AddNumberToObject(e, "created", (double)m->created);
    cJSON_AddStringToObject(e, "owned_by", "wgllm");
    cJSON_AddNumberToObject(e, "context_length", m->n_ctx);
    cJSON_AddStringToObject(e, "chat_template", srv_chat_format_name(m->chat));
    cJSON_AddItemToArray(data, e);
    srv_models_release(&c->srv->models, m);
    return srv_reply_json(c, 200, o);
}

enum MHD_Result srv_route_metrics(srv_conn *c) {
    srv_server *srv = c->srv;
    srv_sched_stats st;
    srv_sched_get_stats(srv->sched, &st);
    srv_model *m = srv_models_acquire(&srv->models);
    srv_metrics_gauges g = {
        .queue_depth = st.queued,
        .queue_capacity = srv->opt.max_queue,
        .active = st.active,
        .parallel = srv->opt.parallel,
        .kv_used_tokens = st.kv_used,
        .kv_capacity_tokens = m ? (uint64_t)m->n_ctx * (uint64_t)srv->opt.parallel : 0,
        .device_memory = m ? m->device_memory : 0,
        .ready = m && !atomic_load(&srv->draining),
        .draining = atomic_load(&srv->draining),
    };
    srv_models_release(&srv->models, m);
    size_t len;
    char *text = srv_metrics_render(srv->metrics, &g, &len);
    if (!text) return MHD_NO;
    return srv_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

cJSON *srv_parse_object(srv_conn *c, srv_error *e) { return srv_json_parse_object(c->body, c->body_len, e); }

enum MHD_Result srv_route_tokenize(srv_conn *c) {
    srv_error e;
    cJSON *root = srv_parse_object(c, &e);
    if (!root) return srv_reply_error(c, &e);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(root, "content");
    const cJSON *special = cJSON_GetObjectItemCaseSensitive(root, "add_special");
    const cJSON *parse = cJSON_GetObjectItemCaseSensitive(root, "parse_special");
    if (!cJSON_IsString(content) || (special && !cJSON_IsBool(special)) || (parse && !cJSON_IsBool(parse))) {
        cJSON_Delete(root);
        srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "content",
                      "expected {\"content\": string, \"add_special\": boolean, \"parse_special\": boolean} "
                      "(the booleans optional)");
        return srv_reply_error(c, &e);
    }
    srv_model *m = srv_models_acquire(&c->srv->models);
    bool bos = special ? cJSON_IsTrue(special) : wgllm_add_bos_default(m->model);
    size_t len = strlen(content->valuestring);
    bool parse_special = cJSON_IsTrue(parse);
    int64_t n = wgllm_tokenize_special(m->model, content->valuestring, len, bos, parse_special, NULL, 0);
    wgllm_token *ids = n > 0 ? malloc(sizeof *ids * (size_t)n) : NULL;
    cJSON *out = NULL;
    if (n >= 0 && (n == 0 || ids)) {
        if (n) wgllm_tokenize_special(m->model, content->valuestring, len, bos, parse_special, ids, n);
        out = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(out, "tokens");
        for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
    }
    free(ids);
    srv_models_release(&c->srv->models, m);
    cJSON_Delete(root);
    if (!out) return srv_reply_errorf(c, 500, "server_error", NULL, "cannot tokenize the text");
    return srv_reply_json(c, 200, out);
}

enum MHD_Result srv_route_detokenize(srv_conn *c) {
    srv_error e;
    cJSON *root = srv_parse_object(c, &e);
    if (!root) return srv_reply_error(c, &e);
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (!cJSON_IsArray(tokens)) {
        cJSON_Delete(root);
        srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "tokens", "expected {\"tokens\": [ids]}");
        return srv_reply_error(c, &e);
    }
    srv_model *m = srv_models_acquire(&c->srv->models);
    int n = cJSON_GetArraySize(tokens), k = 0;
    wgllm_token *ids = malloc(sizeof *ids * (size_t)(n ? n : 1));
    const cJSON *t;
    bool bad = false;
    cJSON_ArrayForEach(t, tokens) {
        double d = cJSON_IsNumber(t) ? t->valuedouble : -1;
        if (!ids || !isfinite(d) || d != floor(d) || d < 0 || d >= m->n_vocab) {
            bad = true;
            break;
        }
        ids[k++] = (wgllm_token)d;
    }
    cJSON *out = NULL;
    if (!bad && ids) {
        size_t len = wgllm_detokenize(m->model, ids, (size_t)k, NULL, 0);
        char *text = malloc(len + 1);
        if (text) {
            wgllm_detokenize(m->model, ids, (size_t)k, text, len + 1);
            char *clean = srv_utf8_sanitize(text, len, NULL);
            if (clean) {
                out = cJSON_CreateObject();
                cJSON_AddStringToObject(out, "content", clean);
            }
            free(clean);
            free(text);
        }
    }
    int n_vocab = m->n_vocab;
    free(ids);
    srv_models_release(&c->srv->models, m);
    cJSON_Delete(root);
    if (bad) {
        srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "tokens",
                      "token ids must be integers in [0, %d)", n_vocab);
        return srv_reply_error(c, &e);
    }
    if (!out) return srv_reply_errorf(c, 500, "server_error", NULL, "out of memory");
    return srv_reply_json(c, 200, out);
}
