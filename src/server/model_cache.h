/* Shared-memory model cache: copies (or hard-links) a model file once into a cache folder,
 * usually a tmpfs such as /dev/shm or a Kubernetes emptyDir with medium Memory, so that later
 * starts map it from RAM instead of reading it again from slow storage.
 *
 * Layout of the cache folder, per source file (NAME = 16 hex digits of a 64-bit hash of the
 * source's absolute path):
 *   NAME.gguf      the cached copy; only ever appears through rename(), so it is complete
 *   NAME.meta      sidecar: source size, source mtime (ns), XXH64 of the content, source path
 *   NAME.lock      flock()ed while a process checks or builds the entry
 *   NAME.partial   a copy in progress (left behind by a killed copy; overwritten next time)
 *
 * An entry is used only when the sidecar parses, matches the source's current size and mtime,
 * the cached file has the recorded size, and its content hashes to the recorded value;
 * anything else (partial, truncated, corrupted, stale) is rebuilt. Several processes may
 * resolve the same model at once (two pods on one node sharing the folder): the lock file
 * serializes them and the second one reuses the first one's copy. A process that already
 * mapped an old copy keeps a valid mapping: entries are replaced by rename, never rewritten. */
#ifndef WGLLM_SERVER_MODEL_CACHE_H
#define WGLLM_SERVER_MODEL_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    WG_MODEL_CACHE_REUSED = 0, /* a valid entry was already there */
    WG_MODEL_CACHE_COPIED = 1, /* the source was copied into the cache */
    WG_MODEL_CACHE_LINKED = 2, /* same filesystem: the source was hard-linked */
} wg_model_cache_action;

typedef struct {
    int allow_hardlink;           /* hard-link instead of copying when on the same filesystem */
    unsigned copy_chunk_delay_us; /* sleep after each copied chunk: tests that kill a copy only */
} wg_model_cache_options;

/* Defaults: hard links allowed; the delay from env WGLLM_CACHE_COPY_CHUNK_DELAY_US (tests
 * only, default 0). */
void wg_model_cache_default_options(wg_model_cache_options *opts);

/* Resolves model_path through the cache in cache_dir (created if missing, one level) and
 * writes the path to load into out_path. Returns 0 on success, -1 with a one-line message in
 * err on failure (the cache is left without a usable entry, never with a partial one). */
int wg_model_cache_resolve(const char *cache_dir, const char *model_path, char *out_path, size_t out_size,
                           char *err, size_t err_size);

/* Same, with explicit options; *action (may be NULL) tells what was done. */
int wg_model_cache_resolve_opts(const char *cache_dir, const char *model_path, const wg_model_cache_options *opts,
                                wg_model_cache_action *action, char *out_path, size_t out_size, char *err,
                                size_t err_size);

/* XXH64 (the xxHash 64-bit algorithm), streaming; used for the content check and entry names. */
typedef struct {
    uint64_t total_len;
    uint64_t v[4];
    uint8_t buf[32];
    uint32_t buf_len;
    uint64_t seed;
} wg_xxh64_state;

void wg_xxh64_init(wg_xxh64_state *s, uint64_t seed);
void wg_xxh64_update(wg_xxh64_state *s, const void *data, size_t len);
uint64_t wg_xxh64_digest(const wg_xxh64_state *s);
uint64_t wg_xxh64(const void *data, size_t len, uint64_t seed);

#endif
