/* Chat templates: the common forms of a GGUF's tokenizer.chat_template, recognised
 * by their markers and rendered natively (no Jinja interpreter). */
#ifndef WGLLM_SERVER_CHAT_TEMPLATE_H
#define WGLLM_SERVER_CHAT_TEMPLATE_H

#include <stddef.h>

#include "server/request.h"

typedef enum srv_chat_format {
    SRV_CHAT_FALLBACK = 0, /* no or unrecognised template: "System:/User:/Assistant:" lines */
    SRV_CHAT_LLAMA2,       /* [INST] <<SYS>> ... <</SYS>> ... [/INST] */
    SRV_CHAT_LLAMA3,       /* <|start_header_id|>role<|end_header_id|> ... <|eot_id|> */
    SRV_CHAT_CHATML,       /* <|im_start|>role ... <|im_end|> */
    SRV_CHAT_ZEPHYR,       /* <|role|> ... </s> */
} srv_chat_format;

/* Recognises a template's family from its text (NULL or empty: fallback). */
srv_chat_format srv_chat_format_detect(const char *tmpl, size_t len);
const char *srv_chat_format_name(srv_chat_format f);

/* Renders the conversation followed by the assistant's turn prefix. Returns a
 * malloc'd NUL-terminated prompt (NULL when out of memory). The BOS token is not
 * part of the text: the tokenizer adds it. */
char *srv_chat_render(srv_chat_format f, const srv_chat_msg *msgs, int n, size_t *len);

/* The text that ends an assistant turn in this format (an implicit stop string), or NULL. */
const char *srv_chat_end_marker(srv_chat_format f);

#endif
