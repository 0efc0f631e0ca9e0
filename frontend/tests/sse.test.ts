import { describe, expect, it } from 'vitest';
import { chatItems, SseParser, type ChatStreamItem } from '../lib/sse';

const enc = new TextEncoder();

function chunk(text: string): string {
  return `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
}

function items(parser: SseParser, input: Uint8Array | string): ChatStreamItem[] {
  return parser.feed(input).flatMap(chatItems);
}

describe('SseParser', () => {
  it('parses whole events', () => {
    const p = new SseParser();
    const out = items(p, chunk('Hel') + chunk('lo') + 'data: [DONE]\n\n');
    expect(out).toEqual([
      { kind: 'delta', text: 'Hel' },
      { kind: 'delta', text: 'lo' },
      { kind: 'done' },
    ]);
  });

  it('gives the same items for every way of cutting the bytes, UTF-8 and CRLF included', () => {
    const stream = (chunk('Grüße ') + chunk('🙂 code:\n```py\nx=1\n```') + 'data: [DONE]\n\n').replace(/\n\n/g, '\r\n\r\n');
    const bytes = enc.encode(stream);
    const whole = items(new SseParser(), bytes);
    expect(whole.filter((i) => i.kind === 'delta').map((i) => (i as { text: string }).text).join('')).toBe('Grüße 🙂 code:\n```py\nx=1\n```');
    for (let cut = 1; cut < bytes.length; cut++) {
      const p = new SseParser();
      const got = [...items(p, bytes.slice(0, cut)), ...items(p, bytes.slice(cut)), ...p.flush().flatMap(chatItems)];
      expect(got, `cut at ${cut}`).toEqual(whole);
    }
  });

  it('splits into single bytes too', () => {
    const bytes = enc.encode(chunk('a') + chunk('b'));
    const p = new SseParser();
    const got: ChatStreamItem[] = [];
    for (const b of bytes) got.push(...items(p, new Uint8Array([b])));
    expect(got).toEqual([
      { kind: 'delta', text: 'a' },
      { kind: 'delta', text: 'b' },
    ]);
  });

  it('ignores comments and keep-alives, joins multi-line data, reads the event name', () => {
    const p = new SseParser();
    const evs = p.feed(': ping\n\nevent: message\ndata: {"a":\ndata: 1}\n\n');
    expect(evs).toEqual([{ event: 'message', data: '{"a":\n1}' }]);
  });

  it('flushes a last event that had no blank line', () => {
    const p = new SseParser();
    expect(p.feed('data: [DONE]')).toEqual([]);
    expect(p.flush()).toEqual([{ event: null, data: '[DONE]' }]);
  });
});

describe('chatItems', () => {
  it('reads usage, finish reasons and errors', () => {
    expect(chatItems({ event: null, data: JSON.stringify({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } }) })).toEqual([
      { kind: 'usage', usage: { prompt_tokens: 7, completion_tokens: 3 } },
    ]);
    expect(chatItems({ event: null, data: JSON.stringify({ choices: [{ delta: {}, finish_reason: 'stop' }] }) })).toEqual([{ kind: 'finish', reason: 'stop' }]);
    expect(chatItems({ event: null, data: JSON.stringify({ error: { message: 'engine died', type: 'x' } }) })).toEqual([{ kind: 'error', message: 'engine died' }]);
  });

  it('skips what is not JSON or carries no text', () => {
    expect(chatItems({ event: null, data: 'not json' })).toEqual([]);
    expect(chatItems({ event: null, data: JSON.stringify({ choices: [{ delta: { role: 'assistant', content: '' } }] }) })).toEqual([]);
    expect(chatItems({ event: null, data: 'null' })).toEqual([]);
  });
});
