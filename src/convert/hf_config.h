/* config.json of a Hugging Face checkpoint of the Llama family (LlamaForCausalLM,
 * MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM) and the
 * Llama 3 RoPE frequency factors derived from it. */
#ifndef WGLLM_CONVERT_HF_CONFIG_H
#define WGLLM_CONVERT_HF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "convert/llama_gguf.h"

typedef struct wg_hf_config {
    wg_llama_shape shape;   /* arch, sizes, rope base/dims, eps, scaling type/factor, window, tied */
    char hf_arch[32];       /* "Qwen2ForCausalLM", ... */
    char name_or_path[256]; /* "_name_or_path", "" when absent */
    /* "llama3" scaling parameters (transformers' defaults when absent) */
    float low_freq_factor;  /* 1 */
    float high_freq_factor; /* 4 */
} wg_hf_config;

/* Reads the fields transformers' configs write (hidden_size, intermediate_size,
 * num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps,
 * rope_theta, max_position_embeddings, vocab_size, tie_word_embeddings, rope_scaling or
 * rope_parameters; Mistral's and Phi-3's sliding_window; Phi-3's partial_rotary_factor
 * and original_max_position_embeddings) with LlamaConfig's defaults for the optional
 * ones. Refuses other architectures, biases other than Qwen2's, activations other than
 * silu, Qwen's use_sliding_window, and rope scaling other than linear and (llama only)
 * llama3, each with a one-line message. */
bool wg_hf_config_parse(const cJSON *root, wg_hf_config *out, char *err, size_t err_size);
bool wg_hf_config_load(const char *path, wg_hf_config *out, char *err, size_t err_size);

/* Llama 3 scaling as divisors of the per-pair frequencies (llama.cpp's rope_freqs):
 * pair j of head size d rotates by pos * base^(-2j/d) / factors[j]. Writes d/2 values. */
void wg_hf_llama3_rope_factors(const wg_hf_config *c, float *factors);

#endif
