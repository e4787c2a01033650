// A WHATWG-conformant server-sent-events parser over a complete byte stream.
//
// parseSSE(bytes) -> {
//   text,        the body decoded as UTF-8 (replacement characters where invalid)
//   utf8Clean,   true when the bytes are valid UTF-8 and hold no U+FFFD
//   events,      [{event, data, id, lines}] in order; `event` defaults to "message"
//   comments,    the text of every comment line (after the ':'), in order
//   discarded,   data of a last event that was not terminated by a blank line (or null)
// }
// Lines end with CRLF, LF or CR. After "field:" one optional space is stripped.
// Several data lines in one event are joined with "\n".

export function decodeUtf8(bytes) {
  const buf = bytes instanceof Uint8Array ? bytes : new TextEncoder().encode(String(bytes));
  let fatalOk = true;
  try { new TextDecoder('utf-8', { fatal: true }).decode(buf); } catch { fatalOk = false; }
  const text = new TextDecoder('utf-8').decode(buf);
  return { text, utf8Clean: fatalOk && !text.includes('\uFFFD') };
}

export function parseSSE(bytes) {
  const { text, utf8Clean } = typeof bytes === 'string' ? { text: bytes, utf8Clean: !bytes.includes('\uFFFD') } : decodeUtf8(bytes);
  let body = text;
  if (body.charCodeAt(0) === 0xfeff) body = body.slice(1);
  const events = [];
  const comments = [];
  let data = [], eventName = '', lastId = '', lines = [], sawField = false;
  // Split keeping track of whether the last line was terminated.
  const parts = body.split(/\r\n|\r|\n/);
  const lastTerminated = parts[parts.length - 1] === '';
  if (lastTerminated) parts.pop();
  parts.forEach((line, i) => {
    const terminated = i < parts.length - 1 || lastTerminated;
    if (!terminated) { // an unterminated last line never completes
      lines.push(line);
      return;
    }
    if (line === '') {
      if (data.length > 0 || sawField) {
        if (data.length > 0) events.push({ event: eventName || 'message', data: data.join('\n'), id: lastId, lines });
      }
      data = []; eventName = ''; lines = []; sawField = false;
      return;
    }
    if (line.startsWith(':')) {
      comments.push(line.slice(1).replace(/^ /, ''));
      return;
    }
    lines.push(line);
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    sawField = true;
    if (field === 'data') data.push(value);
    else if (field === 'event') eventName = value;
    else if (field === 'id') { if (!value.includes('\0')) lastId = value; }
    // retry and unknown fields are ignored
  });
  const discarded = data.length > 0 || lines.length > 0 ? (data.length ? data.join('\n') : lines.join('\n')) : null;
  return { text, utf8Clean, events, comments, discarded };
}

// Splits raw SSE bytes into per-event pieces (each piece ends with its blank line),
// keeping the bytes exactly; used by the fake upstream to write one event per write.
export function splitEventsRaw(buf) {
  const pieces = [];
  let start = 0, lineStart = 0, i = 0;
  const n = buf.length;
  while (i < n) {
    const b = buf[i];
    if (b !== 0x0d && b !== 0x0a) { i++; continue; }
    const t = b === 0x0d && buf[i + 1] === 0x0a ? 2 : 1;
    const empty = i === lineStart;
    i += t;
    lineStart = i;
    if (empty) { // a blank line ends the event (or stands alone)
      pieces.push(buf.subarray(start, i));
      start = i;
    }
  }
  if (start < n) pieces.push(buf.subarray(start));
  return pieces;
}
