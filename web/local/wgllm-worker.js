// The engine in a Web Worker: wgllm.wasm (wasm/wgllm_wasm.c) under the WASI host of
// wasi-mem.mjs. Requests come from wgllm.js as {id, op, ...}; answers are {id, value} or
// {id, error}, and loading posts {id, progress: {loaded, total}} on the way.
import { MemWasi } from './wasi-mem.mjs';

const enc = new TextEncoder(), dec = new TextDecoder();
const GEN_DONE = -2;
let ex = null, wasi = null, session = 0;
let calls = {};

// Exports that may reach the GPU run through WebAssembly.promising where the browser has
// JSPI: a WebGPU import table suspends inside them. Each is awaited either way.
const promising = (f) => (WebAssembly.promising ? WebAssembly.promising(f) : async (...a) => f(...a));

async function instantiate(wasmUrl, onRead) {
  const module = await WebAssembly.compileStreaming(fetch(wasmUrl));
  wasi = new MemWasi(['wgllm'], new Map(), onRead);
  const imports = wasi.importObject();
  let instance = null;
  // A build with the WebGPU backend imports its webgpu.h table from the module "webgpu".
  if (WebAssembly.Module.imports(module).some((i) => i.module === 'webgpu')) {
    const { createWebGPUImports } = await import('./webgpu.mjs');
    Object.assign(imports, createWebGPUImports(self.navigator.gpu, () => instance));
  }
  instance = await WebAssembly.instantiate(module, imports);
  wasi.initialize(instance);
  ex = instance.exports;
  calls = {
    load: promising(ex.wgllm_load),
    begin: promising(ex.wgllm_begin),
    next: promising(ex.wgllm_next),
    free: promising(ex.wgllm_free),
  };
}

function cstring(ptr) {
  if (!ptr) return '';
  const mem = new Uint8Array(ex.memory.buffer);
  let end = ptr;
  while (mem[end]) end++;
  return dec.decode(mem.subarray(ptr, end));
}

function engineError(s) {
  return new Error(cstring(ex.wgllm_error(s)) || 'the engine failed');
}

// Copies bytes into memory from wgllm_alloc; the caller frees the pointer.
function put(bytes) {
  const ptr = ex.wgllm_alloc(bytes.length);
  if (!ptr) throw new Error(`out of memory (${bytes.length} bytes)`);
  new Uint8Array(ex.memory.buffer).set(bytes, ptr);
  return ptr;
}

async function withBytes(bytes, fn) {
  const ptr = put(bytes);
  try {
    return await fn(ptr, bytes.length);
  } finally {
    ex.wgllm_dealloc(ptr);
  }
}

// A name for the model in the engine's messages: the file's own, kept to safe characters.
const safeName = (s) => (s.replace(/[^\w.-]/g, '_').replace(/^\.+/, '') || 'model.gguf').slice(0, 100);

// Streams a URL's body into memory of the module when its length is known (the engine
// then uses that memory as its mapping of the file: one copy); else into a Blob that is
// read like a picked File.
async function fetchModel(url, progress) {
  const resp = await fetch(url);
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status} ${resp.statusText}`);
  const length = resp.headers.get('Content-Encoding') ? NaN : Number(resp.headers.get('Content-Length'));
  const reader = resp.body.getReader();
  if (!(length > 0)) {
    const chunks = [];
    let loaded = 0;
    for (let r; !(r = await reader.read()).done; ) {
      chunks.push(r.value);
      loaded += r.value.length;
      progress(loaded, 0);
    }
    return { source: new Blob(chunks), buf: 0, size: 0 };
  }
  // wasm32: sizes are 32-bit, and the model shares the 4 GiB with everything else
  if (length >= 2 ** 32) {
    reader.cancel().catch(() => {});
    throw new Error(`${url}: ${length} bytes do not fit in WebAssembly's 4 GiB of memory`);
  }
  const buf = ex.wgllm_alloc(length);
  if (!buf) {
    reader.cancel().catch(() => {});
    throw new Error(`out of memory: cannot hold the model's ${length} bytes`);
  }
  let loaded = 0;
  try {
    for (let r; !(r = await reader.read()).done; ) {
      if (loaded + r.value.length > length) throw new Error(`${url}: longer than its Content-Length`);
      new Uint8Array(ex.memory.buffer).set(r.value, buf + loaded);
      loaded += r.value.length;
      progress(loaded, length);
    }
    if (loaded !== length) throw new Error(`${url}: ${loaded} of ${length} bytes arrived`);
  } catch (e) {
    ex.wgllm_dealloc(buf);
    reader.cancel().catch(() => {});
    throw e;
  }
  const source = { size: length, read: (pos, len) => new Uint8Array(ex.memory.buffer, buf + pos, len) };
  return { source, buf, size: length };
}

const ops = {
  async load({ source, backend, nCtx, wasmUrl }, progress) {
    let total = source instanceof Blob ? source.size : 0, loaded = 0;
    await instantiate(wasmUrl, (n) => {
      loaded += n;
      progress(Math.min(loaded, total), total);
    });
    let name, buf = 0, size = 0;
    if (typeof source === 'string') {
      name = safeName(decodeURIComponent(new URL(source, self.location.href).pathname.split('/').pop()));
      const got = await fetchModel(source, progress);
      ({ buf, size } = got);
      source = got.source;
      total = got.source.size;
      if (buf) loaded = total; // already counted while streaming
    } else {
      name = safeName(source.name || 'model.gguf');
    }
    wasi.files.set(name, source);
    const path = put(enc.encode(name + '\0')), be = put(enc.encode(backend + '\0'));
    try {
      session = await calls.load(path, be, nCtx, buf, size);
    } finally {
      ex.wgllm_dealloc(path);
      ex.wgllm_dealloc(be);
      wasi.files.delete(name);
    }
    if (!session) throw engineError(0);
    progress(total, total);
    // memory_bytes: the module's memory after loading (the weights are in it once)
    return { ...JSON.parse(cstring(ex.wgllm_info(session))), memory_bytes: ex.memory.buffer.byteLength };
  },

  async tokenize({ text, special }) {
    return withBytes(enc.encode(text), async (ptr, len) => {
      const n = ex.wgllm_tokenize_text(session, ptr, len, special ? 1 : 0, 0, 0);
      if (n < 0) throw engineError(session);
      const out = ex.wgllm_alloc(4 * n);
      ex.wgllm_tokenize_text(session, ptr, len, special ? 1 : 0, out, n);
      const ids = Array.from(new Int32Array(ex.memory.buffer, out, n));
      ex.wgllm_dealloc(out);
      return ids;
    });
  },

  async format({ messages }) {
    // NUL separates the fields: one inside a message would shift the rest
    const field = (v) => enc.encode(String(v).replaceAll('\0', '') + '\0');
    const parts = messages.flatMap((m) => [field(m.role), field(m.content)]);
    const packed = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    parts.reduce((at, p) => (packed.set(p, at), at + p.length), 0);
    return withBytes(packed, async (ptr, len) => {
      const out = ex.wgllm_chat_format(session, ptr, len, messages.length);
      if (!out) throw engineError(session);
      return cstring(out);
    });
  },

  async begin({ prompt, special, o }) {
    const t0 = performance.now();
    const n = await withBytes(enc.encode(prompt), (ptr, len) =>
      calls.begin(session, ptr, len, special ? 1 : 0, o.maxTokens, o.temperature, o.topP, o.topK, o.minP,
                  o.repeatPenalty, o.seed));
    if (n < 0) throw engineError(session);
    return { promptTokens: n, cachedTokens: ex.wgllm_n_reused(session), promptMs: performance.now() - t0 };
  },

  async next() {
    const t0 = performance.now();
    const t = await calls.next(session);
    const ms = performance.now() - t0;
    if (t === GEN_DONE) return { done: true, text: cstring(ex.wgllm_out(session)), reason: cstring(ex.wgllm_stop_reason(session)), ms };
    if (t < 0) throw engineError(session);
    return { token: t, text: cstring(ex.wgllm_out(session)), ms };
  },

  async free() {
    if (session) await calls.free(session);
    session = 0;
  },
};

// One request at a time, in order: an export suspended by JSPI (awaiting the GPU) must not
// be entered again by the next request.
let queue = Promise.resolve();
self.onmessage = ({ data }) => {
  queue = queue.then(() => handle(data));
};

async function handle(data) {
  const { id, op } = data;
  let last = 0;
  const progress = (loaded, total) => { // at most ten a second, and the end
    const now = performance.now();
    if (now - last < 100 && loaded !== total) return;
    last = now;
    self.postMessage({ id, progress: { loaded, total } });
  };
  try {
    const value = await ops[op](data, progress);
    self.postMessage({ id, value });
  } catch (e) {
    self.postMessage({ id, error: e && e.message ? e.message : String(e) });
  }
}
