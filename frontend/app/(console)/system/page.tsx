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
  const hosts = Array.isArray(s.hosts) ? (s.hosts as Obj[]) : [];
  const disks = Array.isArray(s.disks) ? (s.disks as Obj[]) : [];
  const docker = (s.docker ?? null) as Obj | null;
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
          <h2>Host</h2>
          {hosts.map((h, i) => (
            <dl className="kv" key={i}>
              <dt>Host</dt>
              <dd>{String(h.hostname ?? '—')}</dd>
              <dt>Platform</dt>
              <dd className="muted">{String(h.platform ?? '—')}</dd>
              <dt>CPU</dt>
              <dd>
                {String(h.cpu_count ?? '?')} cores, {String(h.cpu_percent ?? '?')} % busy
              </dd>
              <dt>Memory</dt>
              <dd>
                {formatBytes(Number(h.memory_available_bytes ?? NaN))} free of {formatBytes(Number(h.memory_total_bytes ?? NaN))}
              </dd>
            </dl>
          ))}
          {disks.length > 0 && (
            <table className="t" aria-label="Disks" style={{ marginTop: 12 }}>
              <thead>
                <tr>
                  <th>Disk</th>
                  <th>Path</th>
                  <th className="num">Free</th>
                  <th className="num">Total</th>
                </tr>
              </thead>
              <tbody>
                {disks.map((d, i) => (
                  <tr key={i}>
                    <td>{String(d.name)}</td>
                    <td className="mono">{String(d.path)}</td>
                    <td className="num">{formatBytes(Number(d.free_bytes))}</td>
                    <td className="num">{formatBytes(Number(d.total_bytes))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {docker && (
            <p>
              Docker Engine:{' '}
              {docker.available ? (
                <Badge state="ok" label={`available ${String(docker.version ?? '')}`} />
              ) : (
                <>
                  <Badge state="warn" label="not available" /> <span className="muted">{String(docker.detail ?? '')} — engines run as processes; start dockerd for the docker runtime.</span>
                </>
              )}
            </p>
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
                  <th>Load</th>
                </tr>
              </thead>
              <tbody>
                {gpus.map((g, i) => (
                  <tr key={i}>
                    <td>{String(g.index ?? i)}</td>
                    <td>{String(g.name ?? '—')}</td>
                    <td>
                      {formatBytes(Number(g.memory_used_bytes ?? NaN))} used of {formatBytes(Number(g.memory_total_bytes ?? NaN))}
                    </td>
                    <td>
                      {String(g.utilization_percent ?? '—')} % · {String(g.temperature_c ?? '—')} °C
                    </td>
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
                    <td className="muted">
                      {Array.isArray(b.items) ? `${b.items.length} items` : typeof b.items === 'number' ? `${b.items} items` : '—'}
                      {b.imported_at ? ` · imported ${new Date(String(b.imported_at)).toLocaleString()}` : ''}
                    </td>
                    <td className="mono">{b.signature ? (typeof b.signature === 'string' ? b.signature : JSON.stringify(b.signature)) : 'unsigned'}</td>
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
