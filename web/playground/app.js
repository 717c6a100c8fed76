// The playground: a client of this server's OpenAI API (/v1/models, /v1/chat/completions
// streamed as server-sent events). No dependencies, no build step.
import { renderMarkdown } from './markdown.js';
import { sseData } from './sse.js';

const $ = (id) => document.getElementById(id);
const KEY_STORE = 'wgllm-api-key'; // sessionStorage: gone when the tab closes

const ui = {
  info: $('model-info'), messages: $('messages'), stats: $('stats'),
  ctxBar: $('ctx-bar'), ctxLabel: $('ctx-label'),
  form: $('composer'), prompt: $('prompt'), send: $('send'), stop: $('stop'), regen: $('regen'),
  clear: $('clear'), system: $('system'), markdown: $('markdown'),
  keyDialog: $('key-dialog'), keyForm: $('key-form'), keyInput: $('key-input'), keyCancel: $('key-cancel'),
};

const state = {
  entries: [],      // {role: 'user' | 'assistant' | 'error', content, node, body}
  model: null,
  nCtx: 0,
  ctxUsed: 0,       // tokens of the conversation at the last reply (prompt + completion)
  controller: null, // the request in flight
};

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The server's OpenAI-style error body as an ApiError.
async function apiError(r) {
  let message = r.statusText || 'request failed', code = null;
  try {
    const obj = await r.json();
    if (obj && obj.error) {
      message = String(obj.error.message || message);
      code = obj.error.code || null;
    }
  } catch { /* not JSON: keep the status text */ }
  return new ApiError(r.status, code, message);
}

// ---- the API key: asked for when the server answers 401, kept for this tab only ----
let pendingKey = null;

function askKey(reason) {
  if (pendingKey) return pendingKey;
  pendingKey = new Promise((resolve) => {
    const done = (key) => {
      ui.keyForm.removeEventListener('submit', onSubmit);
      ui.keyCancel.removeEventListener('click', onCancel);
      ui.keyDialog.removeEventListener('cancel', onCancel);
      if (ui.keyDialog.open) ui.keyDialog.close();
      pendingKey = null;
      resolve(key);
    };
    const onSubmit = (e) => {
      e.preventDefault();
      const key = ui.keyInput.value.trim();
      if (key) done(key);
    };
    const onCancel = (e) => {
      e.preventDefault();
      done(null);
    };
    ui.keyForm.addEventListener('submit', onSubmit);
    ui.keyCancel.addEventListener('click', onCancel);
    ui.keyDialog.addEventListener('cancel', onCancel);
    ui.keyDialog.querySelector('p').textContent = reason ||
      'This server needs an API key. It is kept in this tab\'s session storage only.';
    ui.keyInput.value = '';
    ui.keyDialog.showModal();
    ui.keyInput.focus();
  });
  return pendingKey;
}

// fetch() with the key; a 401 asks for a (new) key and tries again.
async function apiFetch(path, init = {}) {
  for (;;) {
    const key = sessionStorage.getItem(KEY_STORE);
    const headers = new Headers(init.headers || {});
    if (key) headers.set('Authorization', 'Bearer ' + key);
    const r = await fetch(path, { ...init, headers });
    if (r.status !== 401) return r;
    const err = await apiError(r);
    sessionStorage.removeItem(KEY_STORE);
    const entered = await askKey(key ? 'The server refused that key (' + err.message + '). Try another.' : null);
    if (!entered) throw err;
    sessionStorage.setItem(KEY_STORE, entered);
  }
}

// ---- the served model ----
async function loadModel() {
  try {
    const r = await apiFetch('/v1/models');
    if (!r.ok) throw await apiError(r);
    const m = (await r.json()).data[0];
    state.model = m.id;
    state.nCtx = Number(m.context_length) || 0;
    ui.info.textContent = 'Model ' + m.id + ' \u00b7 context ' +
      (state.nCtx ? state.nCtx.toLocaleString('en-US') + ' tokens' : 'unknown') +
      (m.chat_template ? ' \u00b7 template ' + m.chat_template : '');
    ui.info.dataset.model = m.id;
    ui.info.dataset.ctx = String(state.nCtx);
  } catch (e) {
    ui.info.textContent = 'Cannot read the model: ' + e.message;
  }
  showContext();
}

// ---- conversation ----
function renderEntry(entry) {
  entry.body.replaceChildren();
  if (entry.role === 'assistant' && ui.markdown.checked) entry.body.appendChild(renderMarkdown(entry.content));
  else entry.body.textContent = entry.content;
  entry.body.classList.toggle('plain', !(entry.role === 'assistant' && ui.markdown.checked));
}

const WHO = { user: 'You', assistant: 'Model', error: 'Error' };

function addEntry(role, content) {
  const node = document.createElement('article');
  node.className = 'msg ' + role;
  node.dataset.role = role;
  const who = document.createElement('h2');
  who.className = 'who';
  who.textContent = WHO[role];
  const body = document.createElement('div');
  body.className = 'body';
  const meta = document.createElement('p');
  meta.className = 'meta';
  node.append(who, body, meta);
  ui.messages.appendChild(node);
  const entry = { role, content, node, body, meta };
  state.entries.push(entry);
  renderEntry(entry);
  scrollDown(true);
  return entry;
}

function removeEntry(entry) {
  entry.node.remove();
  state.entries.splice(state.entries.indexOf(entry), 1);
}

function scrollDown(force) {
  const m = ui.messages;
  if (force || m.scrollHeight - m.scrollTop - m.clientHeight < 80) m.scrollTop = m.scrollHeight;
}

// Re-rendering at most once a frame keeps long replies cheap.
let renderQueued = null;
function scheduleRender(entry) {
  if (renderQueued) return;
  renderQueued = requestAnimationFrame(() => {
    renderQueued = null;
    const stick = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
    renderEntry(entry);
    if (stick) scrollDown(true);
  });
}

function flushRender(entry) {
  if (renderQueued) cancelAnimationFrame(renderQueued);
  renderQueued = null;
  renderEntry(entry);
  scrollDown(false);
}

// ---- settings ----
function numberField(id) {
  const v = $(id).value.trim();
  if (v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function requestBody() {
  const messages = [];
  const system = ui.system.value.trim();
  if (system) messages.push({ role: 'system', content: system });
  for (const e of state.entries) {
    if (e.role === 'user' || (e.role === 'assistant' && e.content)) messages.push({ role: e.role, content: e.content });
  }
  const body = { messages, stream: true, stream_options: { include_usage: true } };
  if (state.model) body.model = state.model;
  for (const k of ['temperature', 'top_p', 'top_k', 'min_p', 'max_tokens', 'seed']) {
    const v = numberField(k);
    if (v !== undefined) body[k] = v;
  }
  if ($('ignore_eos').checked) body.ignore_eos = true;
  return body;
}

// ---- readouts ----
function showContext() {
  const max = state.nCtx || 1;
  ui.ctxBar.max = max;
  ui.ctxBar.value = Math.min(state.ctxUsed, max);
  ui.ctxLabel.textContent = 'Context: ' + state.ctxUsed.toLocaleString('en-US') +
    (state.nCtx ? ' / ' + state.nCtx.toLocaleString('en-US') : '') + ' tokens';
  ui.ctxBar.classList.toggle('full', state.nCtx > 0 && state.ctxUsed >= 0.9 * state.nCtx);
}

function showStats(s, final) {
  const parts = [];
  if (s.tFirst !== null) parts.push('first token ' + Math.round(s.tFirst - s.t0) + ' ms');
  const n = s.usage ? s.usage.completion_tokens : s.chunks;
  const now = final ? s.tLast : performance.now();
  // tokens after the first over the time they took; a reply that arrived in one piece
  // (a fast model: the server sends what it has) is timed from the request instead
  if (s.tFirst !== null && n > 1 && s.chunks > 1 && now - s.tFirst >= 20) {
    parts.push(((n - 1) / ((now - s.tFirst) / 1000)).toFixed(1) + ' tok/s');
  } else if (final && s.tFirst !== null && n > 0 && s.tEnd > s.t0) {
    parts.push((n / ((s.tEnd - s.t0) / 1000)).toFixed(1) + ' tok/s');
  }
  parts.push((s.usage ? '' : '~') + n + ' tokens');
  if (s.finish) parts.push('finish: ' + s.finish);
  if (s.stopped) parts.push('stopped');
  ui.stats.textContent = parts.join(' \u00b7 ');
  ui.stats.dataset.ttftMs = s.tFirst !== null ? String(Math.round(s.tFirst - s.t0)) : '';
}

// ---- generation ----
function setBusy(busy) {
  ui.send.disabled = busy;
  ui.stop.disabled = !busy;
  ui.regen.disabled = busy || !state.entries.some((e) => e.role === 'user');
  ui.clear.disabled = busy;
  document.body.classList.toggle('busy', busy);
}

function showError(e) {
  let text = e.message || String(e);
  if (e instanceof ApiError) {
    text = (e.status ? e.status + ' ' : '') + (e.code ? '(' + e.code + ') ' : '') + text;
  }
  const entry = addEntry('error', text);
  entry.node.setAttribute('role', 'alert');
  if (e instanceof ApiError && e.status) entry.node.dataset.status = String(e.status);
}

async function generate() {
  const body = requestBody();
  const entry = addEntry('assistant', '');
  entry.node.setAttribute('aria-busy', 'true');
  const s = { t0: performance.now(), tFirst: null, tLast: 0, tEnd: 0, chunks: 0, usage: null, finish: null,
    stopped: false };
  const base = state.ctxUsed;
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  ui.stats.textContent = 'waiting for the first token\u2026';
  try {
    const r = await apiFetch('/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!r.ok) throw await apiError(r);
    for await (const data of sseData(r.body)) {
      if (data === '[DONE]') break;
      const obj = JSON.parse(data);
      if (obj.error) throw new ApiError(0, obj.error.code, obj.error.message);
      if (obj.usage) s.usage = obj.usage;
      const choice = obj.choices && obj.choices[0];
      if (!choice) continue;
      const piece = choice.delta && choice.delta.content;
      if (piece) {
        if (s.tFirst === null) s.tFirst = performance.now();
        s.chunks++;
        s.tLast = performance.now();
        entry.content += piece;
        scheduleRender(entry);
        state.ctxUsed = base + s.chunks; // until the usage chunk says
        showContext();
        showStats(s, false);
      }
      if (choice.finish_reason) s.finish = choice.finish_reason;
    }
  } catch (e) {
    if (e.name === 'AbortError') s.stopped = true;
    else showError(e);
  } finally {
    s.tEnd = performance.now();
    state.controller = null;
    entry.node.removeAttribute('aria-busy');
    flushRender(entry);
    if (!entry.content && !s.stopped) {
      removeEntry(entry);
      ui.stats.textContent = '\u00a0';
    } else {
      if (s.usage) state.ctxUsed = s.usage.total_tokens;
      showContext();
      showStats(s, true);
      entry.meta.textContent = s.stopped ? 'stopped' : s.finish === 'length' ? 'cut at the token limit' : '';
    }
    setBusy(false);
    ui.prompt.focus();
  }
}

function send() {
  const text = ui.prompt.value;
  if (!text.trim() || state.controller) return;
  ui.prompt.value = '';
  addEntry('user', text);
  generate();
}

function stop() {
  if (state.controller) state.controller.abort();
}

// Drops what followed the last user message and asks again.
function regenerate() {
  if (state.controller) return;
  while (state.entries.length && state.entries[state.entries.length - 1].role !== 'user') {
    removeEntry(state.entries[state.entries.length - 1]);
  }
  if (state.entries.length) generate();
}

function clearChat() {
  if (state.controller) return;
  while (state.entries.length) removeEntry(state.entries[state.entries.length - 1]);
  state.ctxUsed = 0;
  showContext();
  ui.stats.textContent = '\u00a0';
  setBusy(false);
}

// ---- wiring ----
ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.controller && !ui.keyDialog.open) stop();
});
ui.stop.addEventListener('click', stop);
ui.regen.addEventListener('click', regenerate);
ui.clear.addEventListener('click', clearChat);
ui.markdown.addEventListener('change', () => state.entries.forEach(renderEntry));

// small screens: the conversation first, the settings one tap away
if (window.matchMedia('(max-width: 860px)').matches) $('settings').open = false;
setBusy(false);
showContext();
loadModel();
