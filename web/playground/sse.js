// Server-sent events from a fetch() response body (EventSource cannot POST): yields the
// data of each event as a string, as soon as its blank line arrives.

export async function* sseData(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // line ends may be CRLF or CR; a CR at the very end may be the first half of a CRLF
      const held = !done && buf.endsWith('\r') ? '\r' : '';
      if (held) buf = buf.slice(0, -1);
      buf = buf.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = [];
        for (const line of event.split('\n')) {
          if (line.startsWith(':')) continue; // a comment (the server's ": ping")
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') data.push(value);
        }
        if (data.length) yield data.join('\n');
      }
      buf += held;
      if (done) return;
    }
  } finally {
    reader.cancel().catch(() => {}); // a reader that stopped early closes the connection
  }
}
