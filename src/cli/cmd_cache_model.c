/* `wgllm cache-model`: puts a model into the shared-memory model cache (what `wgllm serve
 * --model-cache DIR` does at start) and prints the path to load. For operators (warm a node's
 * cache before pods start) and tests. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "server/model_cache.h"

static const char k_cache_usage[] =
    "usage: wgllm cache-model --dir DIR [--no-link] FILE\n"
    "\n"
    "Copies FILE once into the cache folder DIR (a tmpfs such as /dev/shm), verified by size,\n"
    "mtime and an XXH64 content hash, and prints the cached file's path. Later calls reuse a valid\n"
    "copy and rebuild a partial, corrupted or stale one. On the same filesystem the file is\n"
    "hard-linked instead of copied, unless --no-link.\n";

static int cache_usage_error(const char *msg) {
    return usage_error("cache-model", "%s", msg);
}

int cmd_cache_model(int argc, char **argv) {
    const char *dir = NULL, *file = NULL;
    wg_model_cache_options opts;
    wg_model_cache_default_options(&opts);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(k_cache_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--dir")) {
            if (!(dir = arg_value(argc, argv, &i, "cache-model"))) return 2;
        } else if (!strcmp(argv[i], "--no-link")) {
            opts.allow_hardlink = 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("cache-model", "unknown option '%s'", argv[i]);
        } else if (file) {
            return cache_usage_error("expected exactly one FILE");
        } else {
            file = argv[i];
        }
    }
    if (!dir) return cache_usage_error("--dir DIR is required");
    if (!file) return cache_usage_error("expected a model FILE");

    char path[4096], err[512];
    wg_model_cache_action action;
    double t0 = now_seconds();
    if (wg_model_cache_resolve_opts(dir, file, &opts, &action, path, sizeof path, err, sizeof err)) {
        fprintf(stderr, "wgllm cache-model: error: %s\n", err);
        return 1;
    }
    static const char *const k_action_names[] = {"reused", "copied", "linked"};
    fprintf(stderr, "wgllm cache-model: %s in %.3f s\n", k_action_names[action], now_seconds() - t0);
    printf("%s\n", path);
    return 0;
}
