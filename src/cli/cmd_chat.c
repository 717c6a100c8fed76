/* `wgllm chat`: an interactive conversation in the model's chat template. User turns
 * come line by line from standard input; replies stream to stdout. The conversation
 * stays in the KV cache: each turn renders the whole conversation (the server's native
 * template renderer), keeps the cached tokens it starts with and evaluates only the rest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/gen_opts.h"
#include "gguf/gguf.h"
#include "server/chat_template.h"
#include "wgllm.h"

static void chat_usage(FILE *out) {
    fprintf(out,
            "usage: wgllm chat -m FILE [--system TEXT] [options]\n"
            "Reads one user turn per line from standard input and streams each reply to stdout.\n"
            "/exit (or the end of input) ends, /reset starts the conversation over.\n"
            "  --system TEXT        system prompt\n"
            "  --template NAME      chat template: chatml, llama2, llama3, zephyr or fallback\n"
            "                       (default: recognised from the model's tokenizer.chat_template)\n"
            "  -n N                 most tokens per reply, -1 = until the end of the turn (default -1)\n");
    gen_opts_usage(out);
    fprintf(out,
            "  --verbose            per turn on stderr: tokens evaluated and reused from the cache\n"
            "When the conversation no longer fits the context, the oldest exchanges are dropped (the\n"
            "system prompt stays) and the rest is evaluated again; a reply that fills the context is cut.\n");
}

typedef struct chat {
    gen_opts g;
    const char *system;
    int fmt; /* srv_chat_format, -1: from the model */
    bool verbose;
    wgllm_model *model;
    wgllm_context *ctx;
    wgllm_sampler *smp;
    srv_chat_msg *msgs;
    int n_msgs, cap_msgs;
    wgllm_token *cached; /* the tokens in the KV cache, in order */
    int n_cached;
    wgllm_token end_token; /* the template's end-of-turn marker when it is one token (<|im_end|>), else -1 */
} chat;

static const srv_chat_format k_formats[] = {SRV_CHAT_CHATML, SRV_CHAT_LLAMA2, SRV_CHAT_LLAMA3, SRV_CHAT_ZEPHYR,
                                            SRV_CHAT_FALLBACK};
#define N_FORMATS (int)(sizeof k_formats / sizeof k_formats[0])

static int parse(int argc, char **argv, chat *c, bool *done) {
    gen_opts_defaults(&c->g, -1, -1);
    c->fmt = -1;
    *done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int taken = gen_opts_parse(&c->g, "chat", argc, argv, &i);
        if (taken == 2) return 2;
        if (taken) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            chat_usage(stdout);
            *done = true;
            return 0;
        } else if (!strcmp(a, "--system")) {
            if (!(c->system = arg_value(argc, argv, &i, "chat"))) return 2;
        } else if (!strcmp(a, "--template")) {
            const char *v = arg_value(argc, argv, &i, "chat");
            if (!v) return 2;
            const char *names[N_FORMATS + 1];
            for (int k = 0; k < N_FORMATS; k++) {
                names[k] = srv_chat_format_name(k_formats[k]);
                if (!strcmp(v, names[k])) c->fmt = (int)k_formats[k];
            }
            names[N_FORMATS] = NULL;
            char list[128], expect[160];
            snprintf(expect, sizeof expect, "choose %s", choice_list(names, list, sizeof list));
            if (c->fmt < 0) return bad_value("chat", a, v, expect);
        } else if (!strcmp(a, "--verbose")) {
            c->verbose = true;
        } else {
            return usage_error("chat", "unknown option '%s'", a);
        }
    }
    if (!c->g.model) return usage_error("chat", "no model given (-m FILE)");
    return 0;
}

static srv_chat_format model_format(const char *path) {
    char err[256];
    gguf_file *f = gguf_open(path, err, sizeof err);
    const char *t = NULL;
    size_t len = 0;
    srv_chat_format fmt = SRV_CHAT_FALLBACK;
    if (f && gguf_get_str(f, "tokenizer.chat_template", &t, &len)) fmt = srv_chat_format_detect(t, len);
    gguf_close(f);
    return fmt;
}

static bool push_msg(chat *c, const char *role, const char *text, size_t len) {
    if (c->n_msgs == c->cap_msgs) {
        int cap = c->cap_msgs ? 2 * c->cap_msgs : 8;
        srv_chat_msg *m = realloc(c->msgs, sizeof *m * (size_t)cap);
        if (!m) return false;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *r = strdup(role), *t = malloc(len + 1);
    if (!r || !t) {
        free(r);
        free(t);
        return false;
    }
    memcpy(t, text, len);
    t[len] = 0;
    c->msgs[c->n_msgs++] = (srv_chat_msg){r, t};
    return true;
}

/* Removes messages [i, i+n). */
static void drop_msgs(chat *c, int i, int n) {
    for (int k = i; k < i + n; k++) {
        free(c->msgs[k].role);
        free(c->msgs[k].content);
    }
    memmove(c->msgs + i, c->msgs + i + n, sizeof *c->msgs * (size_t)(c->n_msgs - i - n));
    c->n_msgs -= n;
}

/* The whole conversation, rendered and tokenized (with BOS, special tokens parsed). */
static wgllm_token *render(chat *c, int64_t *n) {
    size_t len;
    char *text = srv_chat_render((srv_chat_format)c->fmt, c->msgs, c->n_msgs, &len);
    if (!text) return NULL;
    bool bos = wgllm_add_bos_default(c->model);
    *n = wgllm_tokenize_special(c->model, text, len, bos, true, NULL, 0);
    wgllm_token *ids = *n > 0 ? malloc(sizeof *ids * (size_t)*n) : NULL;
    if (ids) wgllm_tokenize_special(c->model, text, len, bos, true, ids, *n);
    free(text);
    return ids;
}

/* Evaluates tokens after what the cache holds, keeping the record of the cache. */
static bool eval_cached(chat *c, const wgllm_token *ids, int n) {
    if (wgllm_eval(c->ctx, ids, n, false) != WGLLM_OK) {
        fprintf(stderr, "\nwgllm chat: error: %s\n", wgllm_context_error(c->ctx));
        return false;
    }
    memcpy(c->cached + c->n_cached, ids, sizeof *ids * (size_t)n);
    c->n_cached += n;
    for (int i = 0; i < n; i++) wgllm_sampler_accept(c->smp, ids[i]);
    return true;
}

/* The new user turn's prompt: the conversation, with the oldest exchanges dropped while it
 * leaves less than `reserve` tokens for the reply. NULL (message printed) with *n = 0 when
 * even the last message alone does not fit, *n = -1 on a failure. */
static wgllm_token *turn_prompt(chat *c, int reserve, int64_t *n) {
    const int n_ctx = wgllm_context_n_ctx(c->ctx);
    const int first = c->system ? 1 : 0; /* the system prompt is never dropped */
    for (;;) {
        wgllm_token *ids = render(c, n);
        if (!ids) {
            fprintf(stderr, "wgllm chat: error: cannot render or tokenize the conversation\n");
            *n = -1;
            return NULL;
        }
        if (*n <= n_ctx - reserve || (c->n_msgs - first <= 1 && *n <= n_ctx)) return ids;
        free(ids);
        if (c->n_msgs - first <= 1) {
            fprintf(stderr, "chat: message skipped: %lld tokens with the template, more than the context of %d\n",
                    (long long)*n, n_ctx);
            *n = 0;
            return NULL;
        }
        /* the oldest exchange: a user message and the reply to it */
        int k = c->n_msgs - first > 2 && !strcmp(c->msgs[first + 1].role, "assistant") ? 2 : 1;
        fprintf(stderr, "chat: the context (%d tokens) is full: dropping the oldest exchange\n", n_ctx);
        drop_msgs(c, first, k);
    }
}

/* Length of the longest suffix of s[0..len) that is a proper prefix of marker. */
static size_t partial_marker(const char *s, size_t len, const char *marker) {
    size_t m = strlen(marker);
    for (size_t k = m - 1 < len ? m - 1 : len; k > 0; k--)
        if (!memcmp(s + len - k, marker, k)) return k;
    return 0;
}

typedef struct reply {
    char *text;
    size_t len, cap, start, printed; /* start: after leading whitespace */
} reply;

static bool reply_add(reply *r, const char *s, size_t n) {
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *t = realloc(r->text, cap);
        if (!t) return false;
        r->text = t;
        r->cap = cap;
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len] = 0;
    while (r->start < r->len && (r->text[r->start] == ' ' || r->text[r->start] == '\n')) r->start++;
    if (r->printed < r->start) r->printed = r->start;
    return true;
}

/* Prints the reply up to `upto`. */
static void reply_print(reply *r, size_t upto) {
    if (upto > r->printed) fwrite(r->text + r->printed, 1, upto - r->printed, stdout);
    if (upto > r->printed) r->printed = upto;
    fflush(stdout);
}

/* The template's end-of-turn marker as a single (special) token, or -1: control tokens print as
 * nothing, so the text match would miss <|im_end|> in a model whose eos is another token. */
static wgllm_token marker_token(const wgllm_model *m, const char *marker) {
    wgllm_token t;
    if (!marker || wgllm_tokenize_special(m, marker, strlen(marker), false, true, &t, 1) != 1) return -1;
    return t;
}

/* Generates and streams one reply; adds it to the conversation. false on a failure. */
static bool generate(chat *c, int turn) {
    const int n_ctx = wgllm_context_n_ctx(c->ctx), n_vocab = wgllm_n_vocab(c->model);
    const char *marker = srv_chat_end_marker((srv_chat_format)c->fmt);
    const bool greedy = c->g.sp.temperature <= 0.0f && c->g.sp.repeat_penalty == 1.0f;
    wgllm_detokenizer *detok = wgllm_detokenizer_create(c->model);
    reply r = {0};
    bool ok = detok != NULL && reply_add(&r, "", 0), marker_hit = false, oom = !ok;
    const char *stop = "length";
    long long n_gen = 0;
    while (ok && (c->g.n_predict < 0 || n_gen < c->g.n_predict)) {
        wgllm_token tok;
        if (greedy) {
            tok = wgllm_greedy(c->ctx);
        } else {
            const float *logits = wgllm_get_logits(c->ctx, 0);
            tok = logits ? wgllm_sampler_sample(c->smp, logits, n_vocab, NULL) : -1;
        }
        if (tok < 0) {
            fprintf(stderr, "\nwgllm chat: error: sampling failed: %s\n", wgllm_context_error(c->ctx));
            ok = false;
            break;
        }
        n_gen++;
        if ((wgllm_token_is_eog(c->model, tok) && !c->g.ignore_eos) || tok == c->end_token) {
            stop = "end of turn";
            break;
        }
        size_t len;
        const char *piece = wgllm_detokenizer_push(detok, tok, &len);
        if (!(ok = reply_add(&r, piece, len))) {
            oom = true;
            break;
        }
        const char *hit = marker ? strstr(r.text, marker) : NULL;
        if (hit) {
            r.len = (size_t)(hit - r.text);
            if (r.start > r.len) r.start = r.len;
            marker_hit = true;
            stop = "end of turn";
            break;
        }
        reply_print(&r, r.len - (marker ? partial_marker(r.text, r.len, marker) : 0));
        if (wgllm_context_n_past(c->ctx) >= n_ctx) {
            stop = "context full";
            fprintf(stderr, "%schat: the context (%d tokens) is full: reply cut\n", r.printed ? "\n" : "", n_ctx);
            break;
        }
        if (!(ok = eval_cached(c, &tok, 1))) break;
    }
    if (ok && !marker_hit) {
        size_t len;
        const char *tail = wgllm_detokenizer_flush(detok, &len);
        oom = !(ok = reply_add(&r, tail, len));
    }
    if (ok) {
        if (marker_hit) r.text[r.len] = 0;
        reply_print(&r, r.len);
        fputc('\n', stdout);
        fflush(stdout);
        oom = !(ok = push_msg(c, "assistant", r.text + r.start, r.len - r.start));
    }
    if (oom) fprintf(stderr, "\nwgllm chat: error: out of memory\n");
    if (ok && c->verbose)
        fprintf(stderr, "chat: turn %d: generated %lld tokens (stop: %s)\n", turn, n_gen, stop);
    free(r.text);
    wgllm_detokenizer_free(detok);
    return ok;
}

/* One user turn: evaluate what the cache lacks, then reply. false on a failure. */
static bool turn(chat *c, const char *line, size_t len, int number) {
    const int n_ctx = wgllm_context_n_ctx(c->ctx);
    long long want = c->g.n_predict >= 0 ? c->g.n_predict : n_ctx / 4;
    const int reserve = (int)(want < n_ctx / 2 ? want : n_ctx / 2);
    if (!push_msg(c, "user", line, len)) {
        fprintf(stderr, "wgllm chat: error: out of memory\n");
        return false;
    }
    int64_t n;
    wgllm_token *ids = turn_prompt(c, reserve, &n);
    if (!ids) {
        drop_msgs(c, c->n_msgs - 1, 1); /* the new message: the conversation goes on without it */
        return n == 0;
    }
    int keep = 0;
    while (keep < c->n_cached && keep < n && c->cached[keep] == ids[keep]) keep++;
    if (keep == n) keep--; /* the last token is evaluated again for its logits */
    wgllm_context_truncate(c->ctx, keep);
    c->n_cached = keep;
    if (c->verbose)
        fprintf(stderr, "chat: turn %d: evaluated %lld prompt tokens, reused %d from the cache\n", number,
                (long long)n - keep, keep);
    bool ok = eval_cached(c, ids + keep, (int)(n - keep));
    free(ids);
    return ok && generate(c, number);
}

static void chat_free(chat *c) {
    drop_msgs(c, 0, c->n_msgs);
    free(c->msgs);
    free(c->cached);
    wgllm_sampler_free(c->smp);
    wgllm_context_free(c->ctx);
    wgllm_model_free(c->model);
}

int cmd_chat(int argc, char **argv) {
    chat c = {0};
    bool help_done;
    int rc = parse(argc, argv, &c, &help_done);
    if (rc || help_done) return rc;
    if ((rc = gen_open(&c.g, "chat", &c.model, &c.ctx, &c.smp))) return rc;
    rc = 1;
    const bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t line_cap = 0;
    if (c.fmt < 0) c.fmt = (int)model_format(c.g.model);
    c.end_token = marker_token(c.model, srv_chat_end_marker((srv_chat_format)c.fmt));
    if (!(c.cached = malloc(sizeof *c.cached * (size_t)wgllm_context_n_ctx(c.ctx))) ||
        (c.system && !push_msg(&c, "system", c.system, strlen(c.system)))) {
        fprintf(stderr, "wgllm chat: error: out of memory\n");
        goto done;
    }
    fprintf(stderr, "chat: template %s, context %d tokens; /exit or end of input ends, /reset starts over\n",
            srv_chat_format_name((srv_chat_format)c.fmt), wgllm_context_n_ctx(c.ctx));
    for (int number = 1;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) {
            if (tty) fputc('\n', stdout); /* leave the terminal on a fresh line after Ctrl-D */
            break;
        }
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            drop_msgs(&c, c.system ? 1 : 0, c.n_msgs - (c.system ? 1 : 0));
            fprintf(stderr, "chat: conversation reset\n");
            continue;
        }
        if (len == 0) continue;
        if (!turn(&c, line, len, number++)) goto done;
    }
    rc = 0;
done:
    free(line);
    chat_free(&c);
    return rc;
}
