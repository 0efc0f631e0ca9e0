'use client';

import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { api } from '@/lib/api';
import { toCsv } from '@/lib/csv';
import { errorRate, formatNumber, num, totals } from '@/lib/metrics';
import { Empty, ErrorBox, PageHead, download, useLoad } from '@/components/ui';

const RANGES: Array<[string, number]> = [
  ['Last hour', 3600],
  ['Last 24 hours', 86400],
  ['Last 7 days', 7 * 86400],
  ['Last 30 days', 30 * 86400],
];
type Row = Record<string, unknown>;
interface UsageResp {
  data?: Row[];
  series?: Row[];
  timeseries?: Row[];
  [k: string]: unknown;
}
const LATENCY_FIELDS: Array<[string, string[]]> = [
  ['p50', ['p50_latency_ms', 'latency_p50_ms']],
  ['p95', ['p95_latency_ms', 'latency_p95_ms']],
  ['p99', ['p99_latency_ms', 'latency_p99_ms']],
  ['TTFT p50', ['p50_ttft_ms', 'ttft_p50_ms']],
  ['TTFT p95', ['p95_ttft_ms', 'ttft_p95_ms']],
];

const BUCKETS = 12;
const BUCKET_FOR: Record<number, string> = { 3600: 'minute', 86400: 'hour', [7 * 86400]: 'day', [30 * 86400]: 'day' };

/** Requests and tokens per time bucket: the daemon's `bucket=` rows summed over groups. */
async function overTime(rangeS: number): Promise<Row[]> {
  const since = new Date(Date.now() - rangeS * 1000).toISOString();
  const r = await api<UsageResp>(`/admin/usage?since=${encodeURIComponent(since)}&bucket=${BUCKET_FOR[rangeS] ?? 'hour'}`);
  const rows = r.data ?? [];
  if (r.bucket === undefined || r.bucket === 'none' || rows.some((x) => typeof x.bucket !== 'string')) {
    return bucketed(rangeS); // an older daemon: no buckets, so ask window by window
  }
  const by = new Map<string, { requests: number; total_tokens: number; errors: number }>();
  for (const x of rows) {
    const cur = by.get(x.bucket as string) ?? { requests: 0, total_tokens: 0, errors: 0 };
    cur.requests += num(x.requests);
    cur.total_tokens += num(x.prompt_tokens) + num(x.completion_tokens);
    cur.errors += num(x.errors);
    by.set(x.bucket as string, cur);
  }
  return Array.from(by, ([bucket, v]) => ({ bucket, ...v })).sort((a, b) => (a.bucket < b.bucket ? -1 : 1));
}

async function bucketed(rangeS: number): Promise<Row[]> {
  const end = Date.now();
  const step = (rangeS * 1000) / BUCKETS;
  return Promise.all(
    Array.from({ length: BUCKETS }, async (_, i) => {
      const since = new Date(end - rangeS * 1000 + i * step);
      const until = new Date(since.getTime() + step);
      const r = await api<UsageResp>(`/admin/usage?since=${encodeURIComponent(since.toISOString())}&until=${encodeURIComponent(until.toISOString())}`);
      const t = totals(r.data ?? []);
      return { bucket: until.toISOString(), requests: t.requests, total_tokens: t.promptTokens + t.completionTokens, errors: t.errors };
    }),
  );
}

function field(r: Row, names: string[]): number | null {
  for (const n of names) if (typeof r[n] === 'number') return r[n] as number;
  return null;
}

export default function UsagePage() {
  const [range, setRange] = useState(86400);
  const [groupBy, setGroupBy] = useState<'model' | 'key' | 'user'>('model');
  const usage = useLoad(
    () => api<UsageResp>(`/admin/usage?by=${groupBy}&since=${encodeURIComponent(new Date(Date.now() - range * 1000).toISOString())}`),
    [range, groupBy],
    15000,
  );
  const rows = usage.data?.data ?? [];
  const served = (usage.data?.series ?? usage.data?.timeseries ?? null) as Row[] | null;
  // no series from the daemon: ask for BUCKETS consecutive windows instead
  const buckets = useLoad(
    () => (served ? Promise.resolve([] as Row[]) : overTime(range)),
    [range, served === null],
    30000,
  );
  const series = served ?? buckets.data ?? [];
  const t = totals(rows);
  const chart = rows.map((r) => ({
    name: String(r[groupBy] ?? '—'),
    prompt: num(r.prompt_tokens),
    completion: num(r.completion_tokens),
    requests: num(r.requests),
    errors: num(r.errors),
  }));
  const latencyCols = LATENCY_FIELDS.filter(([, names]) => rows.some((r) => field(r, names) !== null));
  const timeKey = series.length ? (['bucket', 'time', 't', 'start'].find((k) => k in series[0]) ?? 'bucket') : 'bucket';

  return (
    <>
      <PageHead title="Usage" sub="Requests, tokens and latency of your organization">
        <label className="row" style={{ gap: 6 }}>
          <span className="muted">Range</span>
          <select value={range} onChange={(e) => setRange(Number(e.target.value))} style={{ width: 'auto' }} aria-label="Range">
            {RANGES.map(([l, s]) => (
              <option key={s} value={s}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <label className="row" style={{ gap: 6 }}>
          <span className="muted">Group by</span>
          <select value={groupBy} onChange={(e) => setGroupBy(e.target.value as 'model')} style={{ width: 'auto' }} aria-label="Group by">
            <option value="model">model</option>
            <option value="key">API key</option>
            <option value="user">user</option>
          </select>
        </label>
        <button className="btn" disabled={rows.length === 0} onClick={() => download(`cortex-usage-by-${groupBy}.csv`, toCsv(rows), 'text/csv')}>
          Export CSV
        </button>
      </PageHead>
      <ErrorBox error={usage.error} />
      <div className="grid tiles">
        <div className="tile">
          <div className="label">Requests</div>
          <div className="value">{formatNumber(t.requests, 1)}</div>
        </div>
        <div className="tile">
          <div className="label">Prompt tokens</div>
          <div className="value">{formatNumber(t.promptTokens, 1)}</div>
        </div>
        <div className="tile">
          <div className="label">Completion tokens</div>
          <div className="value">{formatNumber(t.completionTokens, 1)}</div>
        </div>
        <div className="tile">
          <div className="label">Error rate</div>
          <div className="value">{formatNumber(errorRate(t.errors, t.requests), 1)} %</div>
        </div>
        <div className="tile">
          <div className="label">Avg latency</div>
          <div className="value">{t.avgLatencyMs === null ? '—' : `${formatNumber(t.avgLatencyMs, 0)} ms`}</div>
        </div>
      </div>
      {!usage.data && usage.loading ? (
        <p className="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <div className="card">
          <Empty title="No usage in this range">
            <p>Requests appear here once a client calls a model with an API key, or you chat in the playground.</p>
          </Empty>
        </div>
      ) : (
        <div className="grid two">
          {series.length > 0 && (
            <div className="card">
              <h2>Requests and tokens over time</h2>
              <ResponsiveContainer width="100%" height={260}>
                <LineChart data={series}>
                  <CartesianGrid strokeDasharray="3 3" />
                  <XAxis
                    dataKey={timeKey}
                    tickFormatter={(v) =>
                      range > 86400 ? new Date(v).toLocaleDateString([], { month: 'short', day: 'numeric' }) : new Date(v).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
                    }
                  />
                  <YAxis yAxisId="r" allowDecimals={false} />
                  <YAxis yAxisId="t" orientation="right" />
                  <Tooltip labelFormatter={(v) => new Date(v).toLocaleString()} />
                  <Legend />
                  <Line isAnimationActive={false} yAxisId="r" type="monotone" dataKey="requests" stroke="#4f46e5" dot={false} />
                  <Line isAnimationActive={false} yAxisId="t" type="monotone" dataKey="total_tokens" name="tokens" stroke="#06b6d4" dot={false} />
                </LineChart>
              </ResponsiveContainer>
            </div>
          )}
          <div className="card">
            <h2>Tokens by {groupBy}</h2>
            <ResponsiveContainer width="100%" height={260}>
              <BarChart data={chart}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="name" />
                <YAxis />
                <Tooltip />
                <Legend />
                <Bar isAnimationActive={false} dataKey="prompt" stackId="t" fill="#818cf8" name="prompt tokens" />
                <Bar isAnimationActive={false} dataKey="completion" stackId="t" fill="#4f46e5" name="completion tokens" />
              </BarChart>
            </ResponsiveContainer>
          </div>
          <div className="card">
            <h2>Requests by {groupBy}</h2>
            <ResponsiveContainer width="100%" height={260}>
              <BarChart data={chart}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="name" />
                <YAxis allowDecimals={false} />
                <Tooltip />
                <Legend />
                <Bar isAnimationActive={false} dataKey="requests" fill="#06b6d4" />
                <Bar isAnimationActive={false} dataKey="errors" fill="#ef4444" />
              </BarChart>
            </ResponsiveContainer>
          </div>
        </div>
      )}
      {rows.length > 0 && (
        <div className="card">
          <h2>Latency by {groupBy}</h2>
          <table className="t" aria-label="Latency">
            <thead>
              <tr>
                <th>{groupBy}</th>
                <th className="num">Requests</th>
                <th className="num">Avg</th>
                {latencyCols.map(([l]) => (
                  <th key={l} className="num">
                    {l}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr key={i}>
                  <td className="mono">{String(r[groupBy] ?? '—')}</td>
                  <td className="num">{num(r.requests)}</td>
                  <td className="num">{formatNumber(num(r.avg_latency_ms), 0)} ms</td>
                  {latencyCols.map(([l, names]) => (
                    <td key={l} className="num">
                      {field(r, names) === null ? '—' : `${formatNumber(field(r, names), 0)} ms`}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          {latencyCols.length === 0 && <p className="muted">Percentiles appear here when the daemon reports them.</p>}
        </div>
      )}
    </>
  );
}
