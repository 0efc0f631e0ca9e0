import { describe, expect, it } from 'vitest';
import { toCsv } from '../lib/csv';
import { contextFraction, errorRate, formatBytes, newTiming, onToken, percentile, ratePerSecond, tokensPerSecond, totals, ttftMs } from '../lib/metrics';
import { lineErrors } from '../lib/yamlerrors';

describe('stream timing', () => {
  it('takes TTFT from the first token and speed from the tokens after it', () => {
    let t = newTiming(1000);
    expect(ttftMs(t)).toBeNull();
    expect(tokensPerSecond(t)).toBeNull();
    t = onToken(t, 1250); // first token after 250 ms
    expect(ttftMs(t)).toBe(250);
    expect(tokensPerSecond(t)).toBeNull(); // one token: no decode interval yet
    for (let i = 1; i <= 10; i++) t = onToken(t, 1250 + i * 50); // 10 more, one every 50 ms
    expect(t.tokens).toBe(11);
    expect(tokensPerSecond(t)).toBeCloseTo(20, 6); // 10 tokens over 0.5 s
    expect(tokensPerSecond(t, 2250)).toBeCloseTo(10, 6); // measured up to "now" while it streams
  });

  it('never divides by zero', () => {
    let t = onToken(onToken(newTiming(0), 5), 5);
    expect(tokensPerSecond(t)).toBeNull();
    t = onToken(t, 5, 3);
    expect(t.tokens).toBe(5);
  });
});

describe('context and rates', () => {
  it('computes the used share of the context, clamped', () => {
    expect(contextFraction(1000, 24, 4096)).toBeCloseTo(0.25, 6);
    expect(contextFraction(5000, 0, 4096)).toBe(1);
    expect(contextFraction(10, 10, null)).toBeNull();
    expect(contextFraction(10, 10, 0)).toBeNull();
  });

  it('rates and error rates', () => {
    expect(ratePerSecond(300, 300)).toBe(1);
    expect(ratePerSecond(5, 0)).toBe(0);
    expect(errorRate(1, 4)).toBe(25);
    expect(errorRate(0, 0)).toBe(0);
  });

  it('nearest-rank percentiles match a sorted oracle on generated sets', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let n = 1; n < 60; n++) {
      const xs = Array.from({ length: n }, () => Math.round(rand() * 1000));
      const sorted = [...xs].sort((a, b) => a - b);
      for (const p of [50, 95, 99, 100]) {
        const rank = Math.ceil((p / 100) * n); // the definition, 1-based
        expect(percentile(xs, p)).toBe(sorted[rank - 1]);
      }
      expect(percentile(xs, 0)).toBe(sorted[0]);
    }
    expect(percentile([], 95)).toBeNull();
    expect(percentile([NaN, 3], 50)).toBe(3);
  });

  it('totals weight the average latency by requests', () => {
    const t = totals([
      { requests: 1, prompt_tokens: 10, completion_tokens: 5, errors: 0, avg_latency_ms: 100 },
      { requests: 3, prompt_tokens: 20, completion_tokens: 7, errors: 1, avg_latency_ms: 200 },
      { requests: 'x' },
    ]);
    expect(t).toEqual({ requests: 4, promptTokens: 30, completionTokens: 12, errors: 1, avgLatencyMs: 175 });
    expect(totals([]).avgLatencyMs).toBeNull();
  });

  it('formats bytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
  });
});

describe('csv and recipe errors', () => {
  it('quotes and defuses spreadsheet formulas', () => {
    expect(toCsv([{ a: 'x,y', b: '=cmd()', c: -5, d: 'say "hi"' }])).toBe('a,b,c,d\r\n"x,y",\'=cmd(),-5,"say ""hi"""\r\n');
  });

  it('finds the line a recipe error names', () => {
    expect(lineErrors('my.yaml:7: spec.engine: unknown engine\n<recipe>:12: spec.args: bad')).toEqual([
      { line: 7, text: 'my.yaml:7: spec.engine: unknown engine' },
      { line: 12, text: '<recipe>:12: spec.args: bad' },
    ]);
    expect(lineErrors('no line here')).toEqual([{ line: null, text: 'no line here' }]);
    // a path with spaces, and the fix the API appends to the last line
    expect(lineErrors("/srv/my recipes/g.yaml:12: spec.engine: Input should be 'llamacpp' or 'vllm' Fix the fields")[0].line).toBe(12);
  });
});
