/** The numbers the console shows: live stream speed, context use, rates and percentiles. */

export interface StreamTiming {
  startedAt: number; // ms, when the request was sent
  firstTokenAt: number | null;
  lastTokenAt: number | null;
  tokens: number; // completion tokens so far (deltas, or the usage count once known)
}

export function newTiming(now: number): StreamTiming {
  return { startedAt: now, firstTokenAt: null, lastTokenAt: null, tokens: 0 };
}

export function onToken(t: StreamTiming, now: number, count = 1): StreamTiming {
  return {
    ...t,
    firstTokenAt: t.firstTokenAt ?? now,
    lastTokenAt: now,
    tokens: t.tokens + count,
  };
}

/** Time to first token in ms, or null before it. */
export function ttftMs(t: StreamTiming): number | null {
  return t.firstTokenAt === null ? null : t.firstTokenAt - t.startedAt;
}

/**
 * Decode speed: tokens after the first over the time since the first (the first token's
 * wait is TTFT, not decoding). Null until two tokens have arrived over a measurable time.
 */
export function tokensPerSecond(t: StreamTiming, now?: number): number | null {
  if (t.firstTokenAt === null || t.tokens < 2) return null;
  const end = now ?? t.lastTokenAt ?? t.firstTokenAt;
  const seconds = (end - t.firstTokenAt) / 1000;
  if (seconds <= 0) return null;
  return (t.tokens - 1) / seconds;
}

/** Fraction of the context window in use, clamped to [0, 1]; null when the window is unknown. */
export function contextFraction(promptTokens: number, completionTokens: number, context: number | null): number | null {
  if (!context || context <= 0) return null;
  return Math.min(1, Math.max(0, (promptTokens + completionTokens) / context));
}

/** Rough prompt size before the engine reports it: ~4 characters a token. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Per-second rate of a count over a window in seconds. */
export function ratePerSecond(count: number, windowSeconds: number): number {
  if (!(windowSeconds > 0) || !Number.isFinite(count)) return 0;
  return count / windowSeconds;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values; null for none. */
export function percentile(values: number[], p: number): number | null {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * xs.length);
  return xs[Math.max(0, rank - 1)];
}

/** Error share in percent (0 when there were no requests). */
export function errorRate(errors: number, requests: number): number {
  return requests > 0 ? (100 * errors) / requests : 0;
}

/** Totals across usage rows (any grouping), reading only the fields that exist. */
export interface UsageTotals {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  errors: number;
  avgLatencyMs: number | null;
}

export function totals(rows: Array<Record<string, unknown>>): UsageTotals {
  let requests = 0,
    prompt = 0,
    completion = 0,
    errors = 0,
    latencyWeighted = 0;
  for (const r of rows) {
    const n = num(r.requests);
    requests += n;
    prompt += num(r.prompt_tokens);
    completion += num(r.completion_tokens);
    errors += num(r.errors);
    latencyWeighted += num(r.avg_latency_ms) * n;
  }
  return {
    requests,
    promptTokens: prompt,
    completionTokens: completion,
    errors,
    avgLatencyMs: requests > 0 ? latencyWeighted / requests : null,
  };
}

export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

export function formatNumber(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toFixed(digits) + 'G';
  if (abs >= 1e6) return (n / 1e6).toFixed(digits) + 'M';
  if (abs >= 1e4) return (n / 1e3).toFixed(digits) + 'k';
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n,
    i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
