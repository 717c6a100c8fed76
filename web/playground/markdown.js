// A small Markdown renderer for model output. It builds DOM nodes and sets text with text
// nodes only: nothing the model writes is ever parsed as HTML, so a "<script>" in a reply
// is shown as those characters. Covers fenced code blocks, headings, lists, block quotes,
// paragraphs, inline code, bold, italic and http(s) links; anything else stays plain text.

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const ORDERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

function el(tag, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

// Only absolute http(s) URLs become links; javascript:, data: and relative ones stay text.
function safeUrl(raw) {
  try {
    const u = new URL(raw);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

// Inline spans, earliest match first (ties: the order below). A span's inside never holds
// its own delimiter, so an opener without a closer costs one scan to the next delimiter:
// long hostile lines ("[[[[...", "**a**a**a...") stay linear per attempt.
const INLINE = [
  { kind: 'code', re: /(`+)([^`]+)\1(?!`)/ },
  { kind: 'link', re: /\[([^[\]\n]+)\]\(([^()\s]+)\)/ },
  { kind: 'strong', re: /\*\*(?=[^\s*])([^*]*?[^\s*])\*\*/ },
  { kind: 'strong', re: /(?<![\w])__(?=[^\s_])([^_]*?[^\s_])__(?![\w])/ },
  { kind: 'em', re: /\*(?=[^\s*])([^*]*?[^\s*])\*/ },
  { kind: 'em', re: /(?<![\w])_(?=[^\s_])([^_]*?[^\s_])_(?![\w])/ },
];

function inline(text, parent) {
  while (text) {
    let best = null;
    for (const p of INLINE) {
      const m = p.re.exec(text);
      if (m && (!best || m.index < best.m.index)) best = { p, m };
    }
    if (!best) {
      parent.appendChild(document.createTextNode(text));
      return;
    }
    const { p, m } = best;
    if (m.index) parent.appendChild(document.createTextNode(text.slice(0, m.index)));
    if (p.kind === 'code') {
      const code = el('code');
      code.textContent = m[2];
      parent.appendChild(code);
    } else if (p.kind === 'link') {
      const href = safeUrl(m[2]);
      if (href) {
        const a = el('a');
        a.href = href;
        a.rel = 'noopener noreferrer';
        a.target = '_blank';
        inline(m[1], a);
        parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(m[0]));
      }
    } else {
      const e = el(p.kind);
      inline(m[m.length - 1], e);
      parent.appendChild(e);
    }
    text = text.slice(m.index + m[0].length);
  }
}

// Lines of one paragraph: single newlines become line breaks, as chat replies mean them.
function lines(ls, parent) {
  ls.forEach((l, i) => {
    if (i) parent.appendChild(el('br'));
    inline(l, parent);
  });
}

function isBlockStart(line) {
  return FENCE.test(line) || HEADING.test(line) || BULLET.test(line) || ORDERED.test(line) ||
    QUOTE.test(line) || RULE.test(line);
}

// Renders text into a DocumentFragment. An unclosed code fence (a reply still streaming)
// runs to the end of the text.
export function renderMarkdown(text, depth = 0) {
  const out = document.createDocumentFragment();
  const ls = String(text).replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < ls.length) {
    const line = ls[i];
    let m;
    if (!line.trim()) {
      i++;
    } else if ((m = FENCE.exec(line))) {
      const close = m[1];
      const body = [];
      i++;
      while (i < ls.length && !(ls[i].trim().startsWith(close[0].repeat(close.length)) &&
                                !ls[i].trim().replace(/[`~]/g, ''))) {
        body.push(ls[i++]);
      }
      i++;
      const pre = el('pre');
      const code = el('code');
      if (m[2]) {
        code.dataset.lang = m[2];
        pre.dataset.lang = m[2];
      }
      code.textContent = body.join('\n');
      pre.appendChild(code);
      out.appendChild(pre);
    } else if ((m = HEADING.exec(line))) {
      const h = el('h' + Math.min(6, m[1].length + 2)); // the page's own headings stay above
      inline(m[2], h);
      out.appendChild(h);
      i++;
    } else if (RULE.test(line)) {
      out.appendChild(el('hr'));
      i++;
    } else if (QUOTE.test(line) && depth < 8) {
      const inner = [];
      while (i < ls.length && (m = QUOTE.exec(ls[i]))) {
        inner.push(m[1]);
        i++;
      }
      const q = el('blockquote');
      q.appendChild(renderMarkdown(inner.join('\n'), depth + 1));
      out.appendChild(q);
    } else if (BULLET.test(line) || ORDERED.test(line)) {
      const ordered = !BULLET.test(line);
      const re = ordered ? ORDERED : BULLET;
      const list = el(ordered ? 'ol' : 'ul');
      if (ordered) {
        const start = parseInt(ORDERED.exec(line)[1], 10);
        if (start !== 1) list.start = start;
      }
      const items = []; // the lines of each item
      while (i < ls.length) {
        const l = ls[i];
        if ((m = re.exec(l))) {
          items.push([m[ordered ? 2 : 1]]);
        } else if (l.trim() && /^\s+/.test(l) && items.length) { // an indented continuation line
          items[items.length - 1].push(l.trim());
        } else {
          break;
        }
        i++;
      }
      for (const item of items) {
        const li = el('li');
        lines(item, li);
        list.appendChild(li);
      }
      out.appendChild(list);
    } else {
      const para = [];
      while (i < ls.length && ls[i].trim() && !(para.length && isBlockStart(ls[i]))) para.push(ls[i++]);
      const p = el('p');
      lines(para, p);
      out.appendChild(p);
    }
  }
  return out;
}
