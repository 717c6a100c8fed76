/* Native renderers for the chat template families of common GGUF models. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "server/chat_template.h"

static bool contains(const char *s, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(s + i, needle, n)) return true;
    return false;
}

srv_chat_format srv_chat_format_detect(const char *t, size_t len) {
    if (!t || !len) return SRV_CHAT_FALLBACK;
    if (contains(t, len, "<|im_start|>")) return SRV_CHAT_CHATML;
    if (contains(t, len, "<|start_header_id|>")) return SRV_CHAT_LLAMA3;
    if (contains(t, len, "[INST]")) return SRV_CHAT_LLAMA2;
    if (contains(t, len, "<|user|>") || contains(t, len, "<|assistant|>")) return SRV_CHAT_ZEPHYR;
    return SRV_CHAT_FALLBACK;
}

const char *srv_chat_format_name(srv_chat_format f) {
    switch (f) {
    case SRV_CHAT_LLAMA2: return "llama2";
    case SRV_CHAT_LLAMA3: return "llama3";
    case SRV_CHAT_CHATML: return "chatml";
    case SRV_CHAT_ZEPHYR: return "zephyr";
    default: return "fallback";
    }
}

const char *srv_chat_end_marker(srv_chat_format f) {
    switch (f) {
    case SRV_CHAT_LLAMA3: return "<|eot_id|>";
    case SRV_CHAT_CHATML: return "<|im_end|>";
    case SRV_CHAT_ZEPHYR: return "</s>";
    case SRV_CHAT_FALLBACK: return "\nUser:";
    default: return NULL;
    }
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static const char *role_of(const srv_chat_msg *m) {
    return !strcmp(m->role, "developer") ? "system" : m->role;
}

/* Llama 2: the system prompt folds into the first user turn; each finished
 * exchange closes with </s> and the next opens with <s>[INST]. */
static void render_llama2(sbuf *b, const srv_chat_msg *msgs, int n) {
    const char *sys = NULL;
    bool first_user = true;
    for (int i = 0; i < n; i++) {
        const char *role = role_of(&msgs[i]);
        if (!strcmp(role, "system")) {
            sys = msgs[i].content;
        } else if (!strcmp(role, "assistant")) {
            put(b, " ");
            put(b, msgs[i].content);
            put(b, " </s>");
        } else {
            put(b, first_user ? "[INST] " : "<s>[INST] ");
            if (sys) {
                put(b, "<<SYS>>\n");
                put(b, sys);
                put(b, "\n<</SYS>>\n\n");
                sys = NULL;
            }
            put(b, msgs[i].content);
            put(b, " [/INST]");
            first_user = false;
        }
    }
}

char *srv_chat_render(srv_chat_format f, const srv_chat_msg *msgs, int n, size_t *len) {
    sbuf b = {0};
    put(&b, "");
    switch (f) {
    case SRV_CHAT_LLAMA2:
        render_llama2(&b, msgs, n);
        break;
    case SRV_CHAT_LLAMA3:
        for (int i = 0; i < n; i++) {
            put(&b, "<|start_header_id|>");
            put(&b, role_of(&msgs[i]));
            put(&b, "<|end_header_id|>\n\n");
            put(&b, msgs[i].content);
            put(&b, "<|eot_id|>");
        }
        put(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case SRV_CHAT_CHATML:
        for (int i = 0; i < n; i++) {
            put(&b, "<|im_start|>");
            put(&b, role_of(&msgs[i]));
            put(&b, "\n");
            put(&b, msgs[i].content);
            put(&b, "<|im_end|>\n");
        }
        put(&b, "<|im_start|>assistant\n");
        break;
    case SRV_CHAT_ZEPHYR:
        for (int i = 0; i < n; i++) {
            put(&b, "<|");
            put(&b, role_of(&msgs[i]));
            put(&b, "|>\n");
            put(&b, msgs[i].content);
            put(&b, "</s>\n");
        }
        put(&b, "<|assistant|>\n");
        break;
    default:
        for (int i = 0; i < n; i++) {
            const char *role = role_of(&msgs[i]);
            put(&b, !strcmp(role, "system") ? "System: " : !strcmp(role, "assistant") ? "Assistant: " : "User: ");
            put(&b, msgs[i].content);
            put(&b, "\n");
        }
        put(&b, "Assistant:");
        break;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len) *len = b.len;
    return b.p;
}
