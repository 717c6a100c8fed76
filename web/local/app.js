// The page: picks a GGUF (file, drop or URL), loads it through wgllm.js and chats with it.
// Its state is on <body data-state> (empty, loading, ready, generating, error) and the
// loaded model at window.wgllmPage.model (the API at .wgllm), for tests and for the console.
import * as wgllm from './wgllm.js';

const $ = (id) => document.getElementById(id);
const page = (window.wgllmPage = { model: null, generation: null, wgllm });
let history = [];

const mib = (n) => (n / 1048576).toFixed(1) + ' MiB';
const setState = (s) => { document.body.dataset.state = s; };

function showError(e) {
  $('error').textContent = e.message || String(e);
  setState('error');
}

function showInfo(info) {
  const rows = [['model', info.name || '(unnamed)'], ['backend', info.backend], ['architecture', info.arch],
    ['context', `${info.n_ctx} tokens`], ['chat template', info.chat_format], ['weights', mib(info.weight_bytes)]];
  $('info').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt'), dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

async function loadModel(source) {
  if (document.body.dataset.state === 'loading') return;
  setState('loading');
  $('error').textContent = '';
  $('info').replaceChildren();
  $('stats').textContent = '';
  for (const id of ['prompt', 'send', 'reset']) $(id).disabled = true;
  if (page.model) page.model.free();
  page.model = null;
  const bar = $('progress');
  bar.hidden = false;
  bar.removeAttribute('value');
  const t0 = performance.now();
  try {
    page.model = await wgllm.load(source, {
      backend: $('backend').value,
      onProgress: (loaded, total) => {
        if (total) bar.value = loaded / total;
        $('progress-text').textContent = total ? `${mib(loaded)} of ${mib(total)}` : mib(loaded);
      },
    });
  } catch (e) {
    bar.hidden = true;
    $('progress-text').textContent = '';
    return showError(e);
  }
  bar.value = 1;
  $('progress-text').textContent = `loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  showInfo(page.model.info);
  history = [];
  $('log').replaceChildren();
  for (const id of ['prompt', 'send', 'reset']) $(id).disabled = false;
  setState('ready');
}

function addMessage(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text;
  $('log').append(div);
  return div;
}

async function send() {
  const text = $('prompt').value;
  if (!page.model || !text.trim() || document.body.dataset.state !== 'ready') return;
  $('prompt').value = '';
  const raw = $('raw').checked;
  addMessage('user', text);
  const out = addMessage('assistant', '');
  if (!raw) history.push({ role: 'user', content: text });
  setState('generating');
  $('send').disabled = true;
  const gen = (page.generation = page.model.generate(raw ? text : history, {
    chat: !raw,
    maxTokens: Number($('max-tokens').value) || 256,
    temperature: Number($('temperature').value),
  }));
  try {
    for await (const piece of gen) {
      out.textContent += piece;
      const s = gen.stats;
      $('stats').textContent = `${s.tokens} tokens, ${s.tokensPerSecond.toFixed(1)} tokens/s`;
    }
    const s = gen.stats;
    $('stats').textContent = `prompt: ${s.promptTokens} tokens in ${(s.promptMs / 1000).toFixed(2)} s; ` +
      `generation: ${s.tokens} tokens, ${s.tokensPerSecond.toFixed(1)} tokens/s (stop: ${s.stop})`;
    if (!raw) history.push({ role: 'assistant', content: out.textContent });
    setState('ready');
  } catch (e) {
    if (!raw) history.pop();
    showError(e);
    setState('ready');
  } finally {
    $('send').disabled = false;
  }
}

$('file').addEventListener('change', () => { if ($('file').files[0]) loadModel($('file').files[0]); });
$('url-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if ($('url').value) loadModel($('url').value);
});
$('chat-form').addEventListener('submit', (e) => { e.preventDefault(); send(); });
$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); }
});
$('reset').addEventListener('click', () => { history = []; $('log').replaceChildren(); });
document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  const f = e.dataTransfer.files[0];
  if (f) loadModel(f);
});
