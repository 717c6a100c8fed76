/* The small methods: Tokenize, Detokenize, GetModelInfo (as POST /tokenize, POST /detokenize and
 * GET /v1/models) and grpc.health.v1.Health/Check (as GET /ready). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "server/grpc/grpc_call.h"
#include "wgllm/v1/generate.pb-c.h"

/* The call's request as a message of type d, or NULL once the call has ended (the client went
 * away, or the bytes are no such message: INVALID_ARGUMENT). */
static void *recv_request(srv_gcall *g, const ProtobufCMessageDescriptor *d) {
    size_t len = 0;
    uint8_t *bytes = srv_gcall_recv(g, &len);
    if (!bytes) return NULL;
    ProtobufCMessage *rq = protobuf_c_message_unpack(d, NULL, len, bytes);
    free(bytes);
    if (!rq) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request is not a valid %s message", d->name);
        srv_gcall_finish(g, SRV_GRPC_INVALID_ARGUMENT, msg, NULL);
    }
    return rq;
}

void srv_grpc_tokenize(srv_gcall *g) {
    Wgllm__V1__TokenizeRequest *rq = recv_request(g, &wgllm__v1__tokenize_request__descriptor);
    if (!rq) return;
    size_t n_text = strlen(rq->content);
    if (!srv_utf8_valid(rq->content, n_text)) {
        wgllm__v1__tokenize_request__free_unpacked(rq, NULL);
        return srv_gcall_finish(g, SRV_GRPC_INVALID_ARGUMENT, "'content' is not valid UTF-8", NULL);
    }
    srv_model *m = srv_models_acquire(&g->srv->models);
    bool bos = rq->add_special_opt_case == WGLLM__V1__TOKENIZE_REQUEST__ADD_SPECIAL_OPT_ADD_SPECIAL
                   ? rq->add_special
                   : wgllm_add_bos_default(m->model);
    int64_t n = wgllm_tokenize_special(m->model, rq->content, n_text, bos, rq->parse_special, NULL, 0);
    wgllm_token *ids = n > 0 ? malloc(sizeof *ids * (size_t)n) : NULL;
    bool ok = n >= 0 && (n == 0 || ids);
    if (ok && n) wgllm_tokenize_special(m->model, rq->content, n_text, bos, rq->parse_special, ids, n);
    srv_models_release(&g->srv->models, m);
    wgllm__v1__tokenize_request__free_unpacked(rq, NULL);
    if (!ok) {
        free(ids);
        return srv_gcall_finish(g, SRV_GRPC_INTERNAL, "cannot tokenize the text", NULL);
    }
    Wgllm__V1__TokenizeResponse out;
    wgllm__v1__tokenize_response__init(&out);
    out.n_tokens = (size_t)n;
    out.tokens = ids; /* wgllm_token is int32_t */
    srv_gcall_finish(g, SRV_GRPC_OK, NULL, &out.base);
    free(ids);
}

void srv_grpc_detokenize(srv_gcall *g) {
    Wgllm__V1__DetokenizeRequest *rq = recv_request(g, &wgllm__v1__detokenize_request__descriptor);
    if (!rq) return;
    srv_model *m = srv_models_acquire(&g->srv->models);
    int n_vocab = m->n_vocab;
    bool bad = false;
    for (size_t i = 0; i < rq->n_tokens; i++) bad |= rq->tokens[i] < 0 || rq->tokens[i] >= n_vocab;
    char *text = NULL, *clean = NULL;
    if (!bad) {
        size_t n = wgllm_detokenize(m->model, rq->tokens, rq->n_tokens, NULL, 0);
        if ((text = malloc(n + 1))) {
            wgllm_detokenize(m->model, rq->tokens, rq->n_tokens, text, n + 1);
            clean = srv_utf8_sanitize(text, n, NULL);
        }
    }
    srv_models_release(&g->srv->models, m);
    wgllm__v1__detokenize_request__free_unpacked(rq, NULL);
    free(text);
    if (bad) {
        char msg[96];
        snprintf(msg, sizeof msg, "token ids must be integers in [0, %d) (field 'tokens')", n_vocab);
        return srv_gcall_finish(g, SRV_GRPC_INVALID_ARGUMENT, msg, NULL);
    }
    if (!clean) return srv_gcall_finish(g, SRV_GRPC_INTERNAL, "out of memory", NULL);
    Wgllm__V1__DetokenizeResponse out;
    wgllm__v1__detokenize_response__init(&out);
    out.content = clean;
    srv_gcall_finish(g, SRV_GRPC_OK, NULL, &out.base);
    free(clean);
}

void srv_grpc_model_info(srv_gcall *g) {
    Wgllm__V1__GetModelInfoRequest *rq = recv_request(g, &wgllm__v1__get_model_info_request__descriptor);
    if (!rq) return;
    wgllm__v1__get_model_info_request__free_unpacked(rq, NULL);
    srv_model *m = srv_models_acquire(&g->srv->models);
    wgllm_model_info info;
    wgllm_model_get_info(m->model, &info);
    Wgllm__V1__ModelInfo out;
    wgllm__v1__model_info__init(&out);
    out.id = m->id;
    out.context_length = m->n_ctx;
    out.vocab_size = m->n_vocab;
    out.chat_template = (char *)srv_chat_format_name(m->chat);
    out.parallel = g->srv->opt.parallel;
    out.backend = (char *)(info.backend ? info.backend : "");
    srv_gcall_finish(g, SRV_GRPC_OK, NULL, &out.base);
    srv_models_release(&g->srv->models, m);
}

/* "" (the whole server) and "wgllm.v1.Generator" are known; SERVING while ready, as GET /ready. */
void srv_grpc_health_check(srv_gcall *g) {
    Grpc__Health__V1__HealthCheckRequest *rq = recv_request(g, &grpc__health__v1__health_check_request__descriptor);
    if (!rq) return;
    bool known = !rq->service[0] || !strcmp(rq->service, "wgllm.v1.Generator");
    grpc__health__v1__health_check_request__free_unpacked(rq, NULL);
    if (!known) return srv_gcall_finish(g, SRV_GRPC_NOT_FOUND, "unknown service", NULL);
    srv_model *m = srv_models_acquire(&g->srv->models);
    bool ready = m && !atomic_load(&g->srv->draining);
    srv_models_release(&g->srv->models, m);
    Grpc__Health__V1__HealthCheckResponse out;
    grpc__health__v1__health_check_response__init(&out);
    out.status = ready ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    srv_gcall_finish(g, SRV_GRPC_OK, NULL, &out.base);
}
