'use client';

import { api } from '@/lib/api';
import { formatBytes } from '@/lib/metrics';
import { Badge, ErrorBox, PageHead, useLoad } from '@/components/ui';

type Obj = Record<string, unknown>;
interface Check {
  name: string;
  status: string;
  detail?: string;
  fix?: string | null;
}

function asChecks(v: unknown): Check[] {
  return Array.isArray(v) ? (v.filter((c) => c && typeof c === 'object' && 'name' in c && 'status' in c) as Check[]) : [];
}

function uptime(s: number): string {
  const d = Math.floor(s / 86400),
    h = Math.floor((s % 86400) / 3600),
    m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
}

export default function SystemPage() {
  const sys = useLoad(() => api<Obj>('/admin/system'), [], 10000);
  const ready = useLoad(() => fetch('/ready').then((r) => r.json() as Promise<Obj>), [], 10000);
  const s = sys.data ?? {};
  const checks = asChecks(s.checks ?? (s.doctor as Obj | undefined)?.checks);
  const gpus = Array.isArray(s.gpus) ? (s.gpus as Obj[]) : [];
  const bundles = Array.isArray(s.bundles) ? (s.bundles as Obj[]) : [];
  const versions = (s.versions ?? {}) as Obj;
  const shown = ['version', 'url', 'home', 'database', 'redis', 'pid', 'uptime_s'];
  return (
    <>
      <PageHead title="System & health" sub="This daemon, its dependencies and the host" />
      <ErrorBox error={sys.error} />
      <div className="grid two" style={{ alignItems: 'start' }}>
        <div className="card">
          <h2>Daemon</h2>
          <dl className="kv">
            <dt>Readiness</dt>
            <dd>
              <Badge state={ready.data?.status === 'ready' ? 'ok' : 'bad'} label={String(ready.data?.status ?? '…')} />{' '}
              {ready.data?.reason ? <span className="muted">{String(ready.data.reason)}</span> : null}
            </dd>
            <dt>Version</dt>
            <dd>{String(s.version ?? '—')}</dd>
            <dt>URL</dt>
            <dd className="mono">{String(s.url ?? '—')}</dd>
            <dt>Data directory</dt>
            <dd className="mono">{String(s.home ?? '—')}</dd>
            <dt>Database</dt>
            <dd>{String(s.database ?? '—')}</dd>
            <dt>Redis</dt>
            <dd>{s.redis === true ? 'configured' : s.redis === false ? 'not configured (in-process limits)' : String(s.redis ?? '—')}</dd>
            <dt>PID</dt>
            <dd>{String(s.pid ?? '—')}</dd>
            <dt>Uptime</dt>
            <dd>{typeof s.uptime_s === 'number' ? uptime(s.uptime_s) : '—'}</dd>
            {Object.entries(s)
              .filter(([k, v]) => !shown.includes(k) && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'))
              .map(([k, v]) => (
                <FragmentKV key={k} k={k} v={String(v)} />
              ))}
            {Object.entries(versions).map(([k, v]) => (
              <FragmentKV key={`v-${k}`} k={`${k} version`} v={String(v)} />
            ))}
          </dl>
        </div>
        <div className="card">
          <h2>Health checks</h2>
          {checks.length === 0 ? (
            <p className="muted">
              Run <code>cortexctl doctor</code> on the host for the full check of Python, disk, port, database, Redis, Docker and GPUs, each with its fix.
            </p>
          ) : (
            <table className="t" aria-label="Health checks">
              <tbody>
                {checks.map((c, i) => (
                  <tr key={i}>
                    <td style={{ width: 80 }}>
                      <Badge state={c.status.toLowerCase()} label={c.status} />
                    </td>
                    <td>{c.name}</td>
                    <td>
                      {c.detail}
                      {c.fix && <div className="muted">Fix: {c.fix}</div>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div className="card">
          <h2>GPUs</h2>
          {gpus.length === 0 ? (
            <p className="muted">No GPU reported: models run on CPU (llama.cpp) or need a GPU host (vLLM).</p>
          ) : (
            <table className="t">
              <thead>
                <tr>
                  <th>#</th>
                  <th>Name</th>
                  <th>Memory</th>
                  <th>Driver</th>
                </tr>
              </thead>
              <tbody>
                {gpus.map((g, i) => (
                  <tr key={i}>
                    <td>{String(g.index ?? i)}</td>
                    <td>{String(g.name ?? '—')}</td>
                    <td>
                      {formatBytes(Number(g.free_bytes ?? g.memory_free ?? NaN))} free of {formatBytes(Number(g.total_bytes ?? g.memory_total ?? NaN))}
                    </td>
                    <td>{String(g.driver ?? g.driver_version ?? '—')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div className="card">
          <h2>Imported bundles</h2>
          {bundles.length === 0 ? (
            <p className="muted">
              None reported here. On the host: <code>cortexctl bundle list</code> shows imported bundles, their contents and signatures.
            </p>
          ) : (
            <table className="t">
              <thead>
                <tr>
                  <th>Bundle</th>
                  <th>Contents</th>
                  <th>Signature</th>
                </tr>
              </thead>
              <tbody>
                {bundles.map((b, i) => (
                  <tr key={i}>
                    <td>{String(b.name ?? b.id ?? i)}</td>
                    <td className="muted">{Array.isArray(b.items) ? `${b.items.length} items` : String(b.contents ?? '—')}</td>
                    <td>{String(b.signature ?? b.signed_by ?? 'unsigned')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>
    </>
  );
}

function FragmentKV({ k, v }: { k: string; v: string }) {
  return (
    <>
      <dt>{k.replace(/_/g, ' ')}</dt>
      <dd>{v}</dd>
    </>
  );
}
