// Assembles an OpenAI Chat Completions stream (the data events of an SSE body) into
// the values the `@openai.*` assertions read. Choices are keyed by `index`, tool
// calls by `tool_calls[].index` (never by position or id).
//
//   content[i]            concatenated delta.content of choice i ("" when none)
//   reasoning[i]          concatenated delta.reasoning_content (or delta.reasoning)
//   refusal[i]            concatenated delta.refusal
//   finish_reason[i]      the last non-null finish_reason of choice i
//   role[i]               the first delta.role of choice i
//   tool_calls[i]         [{index,id,type,function:{name,arguments}}] sorted by index
//   usage                 the last non-null usage object (top-level, or inside a choice)
//   usage_chunks          how many chunks carried a non-null usage
//   empty_choices_chunks  how many chunks had `choices: []`
//   chunks                how many data events parsed as JSON objects (excluding errors)
//   all_data_json         every data event except [DONE] parses as JSON
//   bad_data              the data events that did not parse
//   error                 the `error` object of the first error event, or undefined
//   error_events          how many data events carried an `error` key
//   ids / models          distinct `id` / `model` values seen on chunks
//   done_count            how many `[DONE]` events
//   events_after_done     data events after the first [DONE]

export function assembleOpenAI(events) {
  const r = {
    content: {}, reasoning: {}, refusal: {}, finish_reason: {}, role: {}, tool_calls: {},
    usage: undefined, usage_chunks: 0, empty_choices_chunks: 0, chunks: 0,
    all_data_json: true, bad_data: [], error: undefined, error_events: 0,
    ids: [], models: [], done_count: 0, events_after_done: 0,
  };
  const calls = {}; // choice -> index -> call
  const touch = (i) => {
    if (!(i in r.content)) { r.content[i] = ''; r.reasoning[i] = ''; r.refusal[i] = ''; }
  };
  for (const ev of events) {
    if (ev.data === '[DONE]') { r.done_count++; continue; }
    if (r.done_count > 0) r.events_after_done++;
    let chunk;
    try { chunk = JSON.parse(ev.data); } catch {
      r.all_data_json = false; r.bad_data.push(ev.data); continue;
    }
    if (chunk === null || typeof chunk !== 'object' || Array.isArray(chunk)) {
      r.all_data_json = false; r.bad_data.push(ev.data); continue;
    }
    if (Object.hasOwn(chunk, 'error') && chunk.error) {
      r.error_events++;
      if (r.error === undefined) r.error = chunk.error;
      continue;
    }
    r.chunks++;
    if (chunk.id !== undefined && !r.ids.includes(chunk.id)) r.ids.push(chunk.id);
    if (chunk.model !== undefined && !r.models.includes(chunk.model)) r.models.push(chunk.model);
    if (chunk.usage) { r.usage = chunk.usage; r.usage_chunks++; }
    const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
    if (Array.isArray(chunk.choices) && chunk.choices.length === 0) r.empty_choices_chunks++;
    for (const ch of choices) {
      const i = ch.index ?? 0;
      touch(i);
      if (ch.usage) { r.usage = ch.usage; r.usage_chunks++; } // Moonshot puts usage in the choice
      const d = ch.delta || {};
      if (typeof d.role === 'string' && !(i in r.role)) r.role[i] = d.role;
      if (typeof d.content === 'string') r.content[i] += d.content;
      if (typeof d.reasoning_content === 'string') r.reasoning[i] += d.reasoning_content;
      else if (typeof d.reasoning === 'string') r.reasoning[i] += d.reasoning;
      if (typeof d.refusal === 'string') r.refusal[i] += d.refusal;
      if (Array.isArray(d.tool_calls)) {
        calls[i] ??= {};
        for (const tc of d.tool_calls) {
          const k = tc.index ?? 0;
          const c = (calls[i][k] ??= { index: k, id: undefined, type: undefined, function: { name: undefined, arguments: '' } });
          if (typeof tc.id === 'string' && tc.id !== '' && c.id === undefined) c.id = tc.id;
          if (typeof tc.type === 'string' && tc.type !== '' && c.type === undefined) c.type = tc.type;
          const f = tc.function || {};
          if (typeof f.name === 'string' && f.name !== '' && c.function.name === undefined) c.function.name = f.name;
          if (typeof f.arguments === 'string') c.function.arguments += f.arguments;
        }
      }
      if (ch.finish_reason !== undefined && ch.finish_reason !== null) r.finish_reason[i] = ch.finish_reason;
    }
  }
  for (const [i, byIdx] of Object.entries(calls)) {
    r.tool_calls[i] = Object.keys(byIdx).map(Number).sort((a, b) => a - b).map((k) => {
      const c = byIdx[k];
      const out = { index: c.index, function: { arguments: c.function.arguments } };
      if (c.id !== undefined) out.id = c.id;
      if (c.type !== undefined) out.type = c.type;
      if (c.function.name !== undefined) out.function.name = c.function.name;
      return out;
    });
  }
  return r;
}
