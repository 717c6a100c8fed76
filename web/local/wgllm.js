// wgllm in the browser: the engine compiled to WebAssembly, run in a Web Worker.
//
//   import * as wgllm from './wgllm.js';
//   const m = await wgllm.load(fileOrUrl, { backend: 'cpu', onProgress: (loaded, total) => {} });
//   for await (const piece of m.generate('Once upon a time', { maxTokens: 64 })) out += piece;
//   m.info;   // {name, backend, arch, n_ctx, n_vocab, chat_format, ...}
//   m.free();
//
// Every failure (a malformed GGUF, out of memory, no WebGPU) rejects with the engine's message.
const here = (name) => new URL(name, import.meta.url).href;

// Defaults of the engine's sampler (wgllm_sampler_default_params).
const GEN_DEFAULTS = { maxTokens: 256, temperature: 0.8, topP: 0.95, topK: 40, minP: 0.05, repeatPenalty: 1.0 };

class WorkerClient {
  constructor(url) {
    this.w = new Worker(url, { type: 'module' });
    this.pending = new Map();
    this.next = 1;
    this.w.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      if (data.progress) return p.onProgress?.(data.progress.loaded, data.progress.total);
      this.pending.delete(data.id);
      if ('error' in data) p.reject(new Error(data.error));
      else p.resolve(data.value);
    };
    // A worker that cannot start (script missing) or dies: every waiting call fails.
    this.w.onerror = (e) => {
      e.preventDefault?.();
      this.fail(new Error(e.message || 'the wgllm worker failed to start'));
    };
  }

  call(op, args = {}, onProgress = null) {
    if (!this.w) return Promise.reject(new Error('the model was freed'));
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pending.set(id, { resolve, reject, onProgress });
      this.w.postMessage({ id, op, ...args });
    });
  }

  fail(err) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  terminate() {
    this.w?.terminate();
    this.w = null;
    this.fail(new Error('the model was freed'));
  }
}

// The length of text that can be released: all of it but a tail that may still become a
// stop string; `stop` is set when one occurs (the text ends where it starts).
function scanStops(text, stops) {
  let cut = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (cut < 0 || i < cut)) cut = i;
  }
  if (cut >= 0) return { release: cut, stop: true };
  let hold = 0;
  for (const s of stops)
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--)
      if (text.endsWith(s.slice(0, k))) { hold = k; break; }
  return { release: text.length - hold, stop: false };
}

// One generation: an async iterable of text pieces. While and after it runs, `tokens`
// holds the produced ids and `stats` the counts and times.
class Generation {
  constructor(model, prompt, opts) {
    this.model = model;
    this.prompt = prompt;
    this.opts = opts;
    this.tokens = [];
    // cachedTokens: prompt tokens reused from the previous generation's cache
    this.stats = { promptTokens: 0, cachedTokens: 0, promptMs: 0, tokens: 0, ms: 0, tokensPerSecond: 0, stop: '' };
  }

  async *[Symbol.asyncIterator]() {
    const m = this.model, o = this.opts;
    if (m.busy) throw new Error('a generation is already running on this model');
    m.busy = true;
    try {
      const chat = o.chat ?? Array.isArray(this.prompt);
      let text = this.prompt, stops = [...(o.stop ?? [])];
      if (chat) {
        const messages = Array.isArray(text) ? text : [{ role: 'user', content: String(text) }];
        text = await m.worker.call('format', { messages });
        if (m.info.chat_end) stops.push(m.info.chat_end);
      }
      stops = stops.filter((s) => s);
      const args = { ...GEN_DEFAULTS, seed: Math.floor(Math.random() * 2 ** 32), ...o };
      const begun = await m.worker.call('begin', { prompt: String(text), special: chat, o: args });
      Object.assign(this.stats, begun);
      let held = '';
      for (;;) {
        const r = await m.worker.call('next');
        this.stats.ms += r.ms;
        if (!r.done) {
          this.tokens.push(r.token);
          this.stats.tokens = this.tokens.length;
          this.stats.tokensPerSecond = this.stats.tokens / (this.stats.ms / 1000 || 1e-9);
        }
        held += r.text;
        const s = scanStops(held, stops);
        const out = held.slice(0, r.done || s.stop ? (s.stop ? s.release : held.length) : s.release);
        held = held.slice(out.length);
        if (out) yield out;
        if (r.done || s.stop) {
          this.stats.stop = s.stop ? 'stop' : r.reason;
          return;
        }
      }
    } finally {
      m.busy = false;
    }
  }
}

export class Model {
  constructor(worker, info) {
    this.worker = worker;
    this.info = info;
    this.busy = false;
  }

  // prompt: text, or [{role, content}] messages. options: maxTokens, temperature (0:
  // greedy), topP, topK, minP, repeatPenalty, seed, stop (strings), chat (render the
  // prompt with the model's chat template; the default for messages).
  generate(prompt, options = {}) {
    return new Generation(this, prompt, options);
  }

  // Token ids of text (with the model's BOS); special: control tokens' text becomes those tokens.
  tokenize(text, { special = false } = {}) {
    return this.worker.call('tokenize', { text, special });
  }

  // The prompt that the model's chat template makes of [{role, content}] messages.
  formatChat(messages) {
    return this.worker.call('format', { messages });
  }

  // Frees the engine and its worker (all of the model's memory).
  async free() {
    try {
      await this.worker.call('free');
    } catch {
      /* the worker is ended below in any case */
    }
    this.worker.terminate();
  }
}

// source: a File or Blob (read in place, slice by slice) or a URL (streamed in).
// options: backend ('cpu', 'webgpu' or 'auto'), nCtx (context tokens; 0: the model's, at most 4096),
// onProgress(loaded, total) (total 0 while unknown), wasmUrl and workerUrl (default:
// next to this file).
export async function load(source, options = {}) {
  const { backend = 'cpu', nCtx = 0, onProgress = null } = options;
  const worker = new WorkerClient(options.workerUrl ?? here('wgllm-worker.js'));
  const src = source instanceof Blob ? source : new URL(String(source), location.href).href;
  try {
    const info = await worker.call('load', { source: src, backend, nCtx,
                                              wasmUrl: options.wasmUrl ?? here('wgllm.wasm') }, onProgress);
    return new Model(worker, info);
  } catch (e) {
    worker.terminate();
    throw e;
  }
}
