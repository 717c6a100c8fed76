/* `wgllm serve`: the OpenAI-compatible HTTP server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "server/server.h"

static void serve_usage(FILE *out) {
    fprintf(out,
            "usage: wgllm serve -m FILE [options]\n"
            "  --host ADDR          listen address (default 127.0.0.1)\n"
            "  --port N             TCP port, 0 = any free port (default 8080)\n"
            "  --backend cpu|webgpu|auto  compute backend (default auto)\n"
            "  --device N           WebGPU adapter (see `wgllm devices`)\n"
            "  -t THREADS           CPU threads (default: all online CPUs)\n"
            "  --parallel N         sequences decoded together, one KV cache each (default 4)\n"
            "  -c, --ctx N          context size of each sequence (default: the model's)\n"
            "  --max-queue N        requests that may wait for a sequence slot; beyond: 429 (default 64)\n"
            "  --drain-timeout S    seconds SIGTERM waits for requests in flight (default 30); requests\n"
            "                       still running then get an error and the exit code is 3\n"
            "  --api-key KEY        require 'Authorization: Bearer KEY' (default: $WGLLM_API_KEY, else none)\n"
            "  --alias NAME         model id in the API (default: the file name without .gguf); kept\n"
            "                       across reloads\n"
            "  --admin-key KEY      enable POST /admin/reload with 'Authorization: Bearer KEY' (default:\n"
            "                       $WGLLM_ADMIN_KEY, else the admin routes are off: 404)\n"
            "  --models-dir DIR     reloads may name only files inside DIR (default: the -m file's folder)\n"
            "  --model-cache DIR    serve a verified copy of the model kept in DIR (e.g. a tmpfs such as\n"
            "                       /dev/shm): copied once, atomically; corrupt or partial copies are rebuilt\n"
            "  --max-body BYTES     largest request body (and gRPC request message); beyond: 413\n"
            "                       (gRPC: RESOURCE_EXHAUSTED) (default 1048576)\n"
            "  --prefill-chunk N    prompt tokens a sequence evaluates per step (default 64)\n"
            "  --step-tokens N      most tokens in one batched step (default 128)\n"
            "  --max-connections N  open HTTP connections, all clients together (default 512); the\n"
            "                       last eighth is kept for client addresses that hold none yet\n"
            "  --max-connections-per-ip N  open connections per client address, 0 = no limit\n"
            "                       (default 128; use 0 behind a proxy, where all share one address)\n"
            "  --request-timeout S  seconds to receive a whole request, headers and body, counted\n"
            "                       from the connection (or the previous answer) (default 30)\n"
            "  --no-webui           no playground page at / (404); the API is unchanged\n"
            "  --local-dir DIR      serve the in-browser page (scripts/build-wasm.sh's OUT/local) at\n"
            "                       /local/ (default: off, 404)\n");
#ifdef WGLLM_HAVE_GRPC
    fprintf(out, "  --grpc-port N        also serve the gRPC API (wgllm.v1.Generator, grpc.health.v1) on\n"
                 "                       this TCP port, 0 = any free port (default: off)\n");
#endif
}

int cmd_serve(int argc, char **argv) {
    srv_options o;
    srv_options_defaults(&o);
    const char *env_key = getenv("WGLLM_API_KEY");
    if (env_key && env_key[0]) o.api_key = env_key;
    const char *env_admin = getenv("WGLLM_ADMIN_KEY");
    if (env_admin && env_admin[0]) o.admin_key = env_admin;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        long long n;
        float f;
#define VALUE() \
    if (!(v = arg_value(argc, argv, &i, "serve"))) return 2
#define BAD() return usage_error("serve", "invalid value '%s' for %s", v, a)
#define INT(lo, hi, dst)                                    \
    do {                                                    \
        VALUE();                                            \
        if (!opt_int("serve", a, v, lo, hi, &n)) return 2;  \
        dst = (int)n;                                       \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            serve_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VALUE();
            o.model_path = v;
        } else if (!strcmp(a, "--host")) {
            VALUE();
            o.host = v;
        } else if (!strcmp(a, "--port")) {
            INT(0, 65535, o.port);
#ifdef WGLLM_HAVE_GRPC
        } else if (!strcmp(a, "--grpc-port")) {
            INT(0, 65535, o.grpc_port);
#endif
        } else if (!strcmp(a, "--backend")) {
            VALUE();
            if (!opt_backend("serve", a, v, &o.backend)) return 2;
        } else if (!strcmp(a, "--device")) {
            INT(0, 64, o.device);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            INT(1, 1024, o.n_threads);
        } else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) {
            INT(1, 256, o.parallel);
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            INT(1, 1 << 24, o.n_ctx);
        } else if (!strcmp(a, "--max-queue")) {
            INT(0, 1 << 20, o.max_queue);
        } else if (!strcmp(a, "--drain-timeout")) {
            VALUE();
            if (!arg_float(v, &f) || f < 0 || f > 86400) BAD();
            o.drain_timeout = f;
        } else if (!strcmp(a, "--api-key")) {
            VALUE();
            if (!v[0]) BAD();
            o.api_key = v;
        } else if (!strcmp(a, "--admin-key")) {
            VALUE();
            if (!v[0]) BAD();
            o.admin_key = v;
        } else if (!strcmp(a, "--models-dir")) {
            VALUE();
            if (!v[0]) BAD();
            o.models_dir = v;
        } else if (!strcmp(a, "--model-cache")) {
            VALUE();
            if (!v[0]) BAD();
            o.model_cache = v;
        } else if (!strcmp(a, "--alias")) {
            VALUE();
            if (!v[0] || strlen(v) >= 128) BAD();
            o.alias = v;
        } else if (!strcmp(a, "--max-body")) {
            VALUE();
            if (!arg_int(v, 1024, 1LL << 32, &n)) BAD();
            o.max_body = (size_t)n;
        } else if (!strcmp(a, "--prefill-chunk")) {
            INT(1, 1 << 16, o.prefill_chunk);
        } else if (!strcmp(a, "--step-tokens")) {
            INT(1, 1 << 20, o.step_tokens);
        } else if (!strcmp(a, "--max-connections")) {
            INT(1, 65536, o.max_connections);
        } else if (!strcmp(a, "--max-connections-per-ip")) {
            INT(0, 65536, o.max_connections_per_ip);
        } else if (!strcmp(a, "--no-webui")) {
            o.no_webui = true;
        } else if (!strcmp(a, "--local-dir")) {
            VALUE();
            o.local_dir = v;
        } else if (!strcmp(a, "--request-timeout")) {
            VALUE();
            if (!arg_float(v, &f) || !(f >= 0.1f) || f > 86400) BAD();
            o.request_timeout = f;
        } else {
            return usage_error("serve", "unknown option '%s'", a);
        }
#undef VALUE
#undef BAD
#undef INT
    }
    if (!o.model_path) {
        return usage_error("serve", "no model given (-m FILE)");
    }
    if (o.admin_key && o.api_key && !strcmp(o.admin_key, o.api_key)) {
        fprintf(stderr, "wgllm serve: error: the admin key must differ from the API key\n");
        return 2;
    }
    if (o.step_tokens < o.parallel) o.step_tokens = o.parallel; /* every decoding sequence fits in a step */
    return srv_run(&o);
}
