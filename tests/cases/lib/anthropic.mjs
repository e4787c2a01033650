// Assembles an Anthropic Messages stream (the events of an SSE body) into the values the
// `@anthropic.*` assertions read, and checks its grammar (FORMATS.md §2.4):
// message_start, then per block i = 0, 1, 2… content_block_start / _delta… / _stop, then
// message_delta, then message_stop; ping anywhere; an error event ends the stream.
//
//   events              the event names in order
//   well_formed         no grammar error and the stream ends with message_stop
//   grammar_errors      what broke the grammar, in words
//   message             message_start.message (without its usage merged)
//   blocks              the assembled content blocks: text / thinking concatenated, tool_use
//                       input parsed from the joined partial_json (the raw string when it
//                       does not parse)
//   stop_reason         from the last message_delta; stop_sequence likewise
//   usage               message_start's usage with every message_delta usage laid over it
//   usage_total_input   usage.input_tokens + cache_creation_input_tokens + cache_read_input_tokens
//   error / error_events  the first error event's `error`, and how many there were
//   pings               how many ping events
//
// Also openaiToAnthropic(events): what an ideal gateway sends an Anthropic client for an
// OpenAI-compatible upstream's stream (FORMATS.md §4.4), used by the case consistency test.

const DELTA_FOR = { text: ['text_delta'], thinking: ['thinking_delta', 'signature_delta'], tool_use: ['input_json_delta'] };

export function assembleAnthropic(events) {
  const r = {
    events: [], well_formed: false, grammar_errors: [], message: undefined, blocks: [],
    stop_reason: undefined, stop_sequence: undefined, usage: undefined, usage_total_input: undefined,
    error: undefined, error_events: 0, pings: 0,
  };
  const err = (s) => r.grammar_errors.push(`event #${r.events.length - 1} (${r.events.at(-1)}): ${s}`);
  const json = []; // partial_json per block
  let open = -1, state = 'start'; // start -> blocks -> delta -> stopped | failed
  for (const ev of events) {
    r.events.push(ev.event);
    let d;
    try { d = JSON.parse(ev.data); } catch { err('data is not JSON'); continue; }
    if (d?.type !== ev.event) err(`data.type ${JSON.stringify(d?.type)} differs from the event name`);
    if (state === 'stopped' || state === 'failed') err('event after the end of the stream');
    switch (ev.event) {
      case 'ping': r.pings++; break;
      case 'error':
        r.error_events++;
        if (r.error === undefined) r.error = d.error;
        state = 'failed';
        break;
      case 'message_start':
        if (state !== 'start') err('message_start is not the first event');
        r.message = { ...d.message };
        delete r.message.usage;
        r.usage = { ...(d.message?.usage ?? {}) };
        state = 'blocks';
        break;
      case 'content_block_start': {
        if (state !== 'blocks') err('content_block_start outside the block section');
        if (open >= 0) err(`block ${open} is still open`);
        if (d.index !== r.blocks.length) err(`index ${d.index}, expected ${r.blocks.length}`);
        const b = { ...(d.content_block ?? {}) };
        if (b.type === 'tool_use') json[r.blocks.length] = '';
        r.blocks.push(b);
        open = d.index;
        break;
      }
      case 'content_block_delta': {
        if (d.index !== open || open < 0) { err(`delta for index ${d.index}, open block is ${open}`); break; }
        const b = r.blocks[open], t = d.delta?.type;
        if (!(DELTA_FOR[b.type] ?? []).includes(t)) err(`${t} in a ${b.type} block`);
        if (t === 'text_delta') b.text = (b.text ?? '') + d.delta.text;
        else if (t === 'thinking_delta') b.thinking = (b.thinking ?? '') + d.delta.thinking;
        else if (t === 'signature_delta') b.signature = d.delta.signature;
        else if (t === 'input_json_delta') json[open] += d.delta.partial_json;
        break;
      }
      case 'content_block_stop':
        if (d.index !== open || open < 0) err(`stop for index ${d.index}, open block is ${open}`);
        open = -1;
        break;
      case 'message_delta':
        if (state !== 'blocks' && state !== 'delta') err('message_delta before message_start');
        if (open >= 0) err(`message_delta while block ${open} is open`);
        r.stop_reason = d.delta?.stop_reason;
        r.stop_sequence = d.delta?.stop_sequence;
        r.usage = { ...(r.usage ?? {}), ...(d.usage ?? {}) };
        state = 'delta';
        break;
      case 'message_stop':
        if (state !== 'delta') err('message_stop without a message_delta before it');
        state = 'stopped';
        break;
      default: break; // "we may add new event types": unknown events are ignored
    }
  }
  r.blocks.forEach((b, i) => {
    if (b.type !== 'tool_use' || json[i] === undefined) return;
    if (json[i] === '') return; // input stays as content_block_start gave it
    try { b.input = JSON.parse(json[i]); } catch { b.input = json[i]; }
  });
  if (r.usage) {
    const n = (k) => (typeof r.usage[k] === 'number' ? r.usage[k] : 0);
    r.usage_total_input = n('input_tokens') + n('cache_creation_input_tokens') + n('cache_read_input_tokens');
  }
  r.well_formed = r.grammar_errors.length === 0 && state === 'stopped';
  return r;
}

const STOP = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', content_filter: 'refusal' };

// OpenAI chunks -> Anthropic events, as `event: NAME\ndata: JSON` strings.
export function openaiToAnthropic(events) {
  const out = [];
  const send = (name, data) => out.push(`event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}`);
  let kind = null, index = -1, next = 0, tool = -1, stop = 'end_turn', usage = null, ended = false;
  const close = () => { if (kind) send('content_block_stop', { index }); kind = null; };
  const open = (k, block) => { close(); kind = k; index = next++; send('content_block_start', { index, content_block: block }); };
  send('message_start', { message: { id: 'msg_ideal', type: 'message', role: 'assistant', model: 'm', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } } });
  send('ping', {});
  for (const ev of events) {
    if (ev.data === '[DONE]') { ended = true; break; }
    let j;
    try { j = JSON.parse(ev.data); } catch { continue; }
    if (j.usage) usage = j.usage;
    const ch = (j.choices ?? [])[0];
    const d = ch?.delta ?? {};
    if (ch?.usage) usage = ch.usage;
    const r = d.reasoning_content ?? d.reasoning;
    if (r) { if (kind !== 'thinking') open('thinking', { type: 'thinking', thinking: '', signature: '' }); send('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: r } }); }
    if (d.content) { if (kind !== 'text') open('text', { type: 'text', text: '' }); send('content_block_delta', { index, delta: { type: 'text_delta', text: d.content } }); }
    for (const tc of d.tool_calls ?? []) {
      const i = tc.index ?? 0;
      if (kind !== 'tool' || i !== tool) { tool = i; open('tool', { type: 'tool_use', id: tc.id, name: tc.function?.name, input: {} }); }
      if (tc.function?.arguments) send('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: tc.function.arguments } });
    }
    if (ch?.finish_reason) { close(); stop = STOP[ch.finish_reason] ?? 'end_turn'; ended = true; }
  }
  if (!ended) { // cut short: the error event alone ends the stream (§2.7)
    send('error', { error: { type: 'api_error', message: 'the upstream closed the stream before it finished' } });
    return Buffer.from(out.join('\n\n') + '\n\n');
  }
  close();
  const p = usage?.prompt_tokens ?? 0;
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? usage?.prompt_cache_hit_tokens ?? usage?.cached_tokens ?? 0;
  send('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { input_tokens: p - cached, cache_creation_input_tokens: 0, cache_read_input_tokens: cached, output_tokens: usage?.completion_tokens ?? 0 } });
  send('message_stop', {});
  return Buffer.from(out.join('\n\n') + '\n\n');
}
