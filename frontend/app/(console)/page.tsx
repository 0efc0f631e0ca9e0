'use client';

import Link from 'next/link';
import { api, can } from '@/lib/api';
import { errorRate, formatBytes, formatNumber, num, ratePerSecond, totals } from '@/lib/metrics';
import { Badge, Empty, ErrorBox, PageHead, useLoad } from '@/components/ui';
import { useAuth } from '@/components/auth';
import type { ModelInfo } from '@/lib/types';

const WINDOW_S = 300; // rates over the last five minutes

type UsageResp = { data?: Array<Record<string, unknown>> } & Record<string, unknown>;

export default function Dashboard() {
  const { me } = useAuth();
  const models = useLoad(() => (can(me, 'models:read') ? api<ModelInfo[]>('/admin/models') : Promise.resolve([])), [me], 5000);
  const usage = useLoad(
    () =>
      can(me, 'usage:read')
        ? api<UsageResp>(`/admin/usage?since=${encodeURIComponent(new Date(Date.now() - WINDOW_S * 1000).toISOString())}`)
        : Promise.resolve(null),
    [me],
    5000,
  );
  const system = useLoad(() => (me?.operator ? api<Record<string, unknown>>('/admin/system').catch(() => null) : Promise.resolve(null)), [me], 10000);

  const rows = usage.data?.data ?? [];
  const t = totals(rows);
  const p95 = pickNumber(usage.data, ['p95_latency_ms', 'latency_p95_ms']) ?? maxOf(rows, ['p95_latency_ms', 'latency_p95_ms']);
  const running = (models.data ?? []).filter((m) => m.state === 'running').length;
  const host = (Array.isArray(system.data?.hosts) ? system.data!.hosts[0] : null) as Record<string, unknown> | null;
  const disk = (Array.isArray(system.data?.disks) ? (system.data!.disks as Record<string, unknown>[]).find((d) => d.name === 'models') ?? system.data!.disks[0] : null) as Record<string, unknown> | null;
  const gpus = (Array.isArray(system.data?.gpus) ? system.data!.gpus : []) as Record<string, unknown>[];

  return (
    <>
      <PageHead title="Dashboard" sub={`Live view · refreshes every 5 s · rates over the last ${WINDOW_S / 60} minutes`} />
      <ErrorBox error={models.error || usage.error} />
      <div className="grid tiles">
        <Tile label="Models running" value={`${running} / ${models.data?.length ?? 0}`} />
        <Tile label="Requests / s" value={formatNumber(ratePerSecond(t.requests, WINDOW_S), 2)} sub={`${t.requests} requests`} />
        <Tile label="Tokens / s" value={formatNumber(ratePerSecond(t.promptTokens + t.completionTokens, WINDOW_S), 1)} sub={`${formatNumber(t.completionTokens, 1)} generated`} />
        <Tile label="Errors" value={`${formatNumber(errorRate(t.errors, t.requests), 1)} %`} sub={`${t.errors} failed`} />
        <Tile label="Latency p95 (worst model)" value={p95 !== null ? `${formatNumber(p95, 0)} ms` : '—'} sub={t.avgLatencyMs !== null ? `avg ${formatNumber(t.avgLatencyMs, 0)} ms` : 'no requests yet'} />
        {host && <Tile label="CPU" value={`${formatNumber(num(host.cpu_percent), 0)} %`} sub={`${num(host.cpu_count)} cores · load ${Array.isArray(host.load_average) ? formatNumber(num(host.load_average[0]), 2) : '—'}`} />}
        {host && num(host.memory_total_bytes) > 0 && (
          <Tile label="Memory" value={`${formatNumber(num(host.memory_used_percent), 0)} %`} sub={`${formatBytes(num(host.memory_available_bytes))} free of ${formatBytes(num(host.memory_total_bytes))}`} />
        )}
        {disk && num(disk.total_bytes) > 0 && (
          <Tile label={`Disk (${String(disk.name)})`} value={formatBytes(num(disk.free_bytes))} sub={`free of ${formatBytes(num(disk.total_bytes))}`} />
        )}
        {system.data && (
          <Tile
            label="GPUs"
            value={gpus.length ? `${gpus.length}` : 'none'}
            sub={gpus.length ? gpus.map((g) => `${formatBytes(num(g.memory_used_bytes))} / ${formatBytes(num(g.memory_total_bytes))}`).join(' · ') : 'CPU engines only'}
          />
        )}
      </div>
      {can(me, 'models:read') && (
        <div className="card">
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <h2>Models</h2>
            <Link href="/models">Manage models →</Link>
          </div>
          {models.data && models.data.length === 0 ? (
            <Empty title="No models yet">
              <p>
                Create one from a recipe: <Link href="/models">Models → Create model</Link>, or on the host{' '}
                <code>cortexctl model create -f recipes/gemma3-270m-cpu.yaml --start</code>.
              </p>
            </Empty>
          ) : (
            <table className="t" aria-label="Models">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Served as</th>
                  <th>Engine</th>
                  <th>State</th>
                  <th>Reason</th>
                </tr>
              </thead>
              <tbody>
                {(models.data ?? []).map((m) => (
                  <tr key={m.name} data-model={m.name}>
                    <td>
                      <Link href={`/models?name=${encodeURIComponent(m.name)}`}>{m.name}</Link>
                    </td>
                    <td className="mono">{m.served_name}</td>
                    <td>{m.engine}</td>
                    <td>
                      <Badge state={m.state} />
                    </td>
                    <td className="muted">{m.diagnosis?.summary ?? m.state_reason ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
      {rows.length > 0 && (
        <div className="card">
          <h2>Traffic by model (last {WINDOW_S / 60} min)</h2>
          <table className="t">
            <thead>
              <tr>
                <th>Model</th>
                <th className="num">Requests</th>
                <th className="num">Tokens</th>
                <th className="num">Errors</th>
                <th className="num">Avg latency</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr key={i}>
                  <td className="mono">{String(r.model ?? '—')}</td>
                  <td className="num">{num(r.requests)}</td>
                  <td className="num">{formatNumber(num(r.prompt_tokens) + num(r.completion_tokens))}</td>
                  <td className="num">{num(r.errors)}</td>
                  <td className="num">{formatNumber(num(r.avg_latency_ms), 0)} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Tile({ label, value, sub }: { label: string; value: string; sub?: string }) {
  return (
    <div className="tile">
      <div className="label">{label}</div>
      <div className="value">{value}</div>
      {sub && <div className="sub">{sub}</div>}
    </div>
  );
}

function pickNumber(obj: Record<string, unknown> | null | undefined, keys: string[]): number | null {
  if (!obj) return null;
  for (const k of keys) if (typeof obj[k] === 'number') return obj[k] as number;
  return null;
}

function maxOf(rows: Array<Record<string, unknown>>, keys: string[]): number | null {
  let best: number | null = null;
  for (const r of rows) {
    const v = pickNumber(r, keys);
    if (v !== null) best = best === null ? v : Math.max(best, v);
  }
  return best;
}
