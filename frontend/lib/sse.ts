/**
 * Server-sent events parsing for OpenAI-style chat streams.
 *
 * Bytes arrive in arbitrary chunks: an event may be split anywhere (even inside a UTF-8
 * character or between "\r" and "\n"). `SseParser` buffers until a blank line ends an event
 * and yields each event's joined `data:` lines; `chatDeltas` turns them into text deltas,
 * usage and errors.
 */

export interface SseEvent {
  event: string | null;
  data: string;
}

export class SseParser {
  private buffer = '';
  private decoder = new TextDecoder();

  /** Feed raw bytes (or text); returns the events completed by them. */
  feed(chunk: Uint8Array | string): SseEvent[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const events: SseEvent[] = [];
    // normalise line ends but keep a trailing "\r": its "\n" may be in the next chunk
    let text = this.buffer.replace(/\r\n/g, '\n');
    const pendingCr = text.endsWith('\r');
    if (pendingCr) text = text.slice(0, -1);
    text = text.replace(/\r/g, '\n');
    let cut: number;
    while ((cut = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, cut);
      text = text.slice(cut + 2);
      const ev = parseBlock(block);
      if (ev) events.push(ev);
    }
    this.buffer = pendingCr ? text + '\r' : text;
    return events;
  }

  /** The last event if the stream ended without a blank line. */
  flush(): SseEvent[] {
    const rest = this.buffer + this.decoder.decode();
    this.buffer = '';
    const ev = rest.trim() ? parseBlock(rest.replace(/\r\n?/g, '\n').replace(/\n+$/, '')) : null;
    return ev ? [ev] : [];
  }
}

function parseBlock(block: string): SseEvent | null {
  const data: string[] = [];
  let event: string | null = null;
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
  }
  if (data.length === 0) return null;
  return { event, data: data.join('\n') };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens?: number;
}

export type ChatStreamItem =
  | { kind: 'delta'; text: string }
  | { kind: 'usage'; usage: Usage }
  | { kind: 'error'; message: string }
  | { kind: 'done' }
  | { kind: 'finish'; reason: string };

/** What one SSE event of a chat-completion stream means for the playground. */
export function chatItems(ev: SseEvent): ChatStreamItem[] {
  if (ev.data === '[DONE]') return [{ kind: 'done' }];
  let payload: unknown;
  try {
    payload = JSON.parse(ev.data);
  } catch {
    return [];
  }
  if (!payload || typeof payload !== 'object') return [];
  const p = payload as Record<string, unknown>;
  const out: ChatStreamItem[] = [];
  if (p.error && typeof p.error === 'object') {
    const msg = (p.error as Record<string, unknown>).message;
    out.push({ kind: 'error', message: typeof msg === 'string' ? msg : 'The model failed.' });
    return out;
  }
  const choices = Array.isArray(p.choices) ? p.choices : [];
  for (const c of choices) {
    const choice = c as Record<string, unknown>;
    const delta = choice.delta as Record<string, unknown> | undefined;
    if (delta && typeof delta.content === 'string' && delta.content !== '') {
      out.push({ kind: 'delta', text: delta.content });
    }
    if (typeof choice.finish_reason === 'string') out.push({ kind: 'finish', reason: choice.finish_reason });
  }
  if (p.usage && typeof p.usage === 'object') {
    const u = p.usage as Record<string, unknown>;
    if (typeof u.prompt_tokens === 'number' && typeof u.completion_tokens === 'number') {
      out.push({ kind: 'usage', usage: { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens } });
    }
  }
  return out;
}
