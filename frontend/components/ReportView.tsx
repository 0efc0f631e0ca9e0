'use client';

import { formatBytes } from '@/lib/metrics';
import { Badge } from './ui';

export interface Report {
  ok: boolean;
  breakdown: { components: Array<{ name: string; bytes: number; device: string; note: string }>; total: number; gpu_bytes: number; host_bytes: number; notes?: string[] } | null;
  checks: Array<{ name: string; status: string; detail: string; fix: string | null }>;
  command: string[] | Record<string, unknown> | null;
}

export function ReportView({ report }: { report: Report }) {
  return (
    <div data-testid="validation-report">
      <div className={`alert ${report.ok ? 'ok' : 'error'}`}>{report.ok ? 'All checks pass: the model fits and can start.' : 'Some checks fail: fix them before starting (or start with --force on the host).'}</div>
      {report.breakdown && (
        <>
          <h3 style={{ fontSize: 14 }}>Memory breakdown</h3>
          <table className="t" aria-label="Memory breakdown">
            <thead>
              <tr>
                <th>Component</th>
                <th>Device</th>
                <th className="num">Size</th>
                <th>How</th>
              </tr>
            </thead>
            <tbody>
              {report.breakdown.components.map((c, i) => (
                <tr key={i}>
                  <td>{c.name}</td>
                  <td>{c.device}</td>
                  <td className="num">{formatBytes(c.bytes)}</td>
                  <td className="muted">{c.note}</td>
                </tr>
              ))}
              <tr>
                <td>
                  <strong>Total</strong>
                </td>
                <td />
                <td className="num">
                  <strong>{formatBytes(report.breakdown.total)}</strong>
                </td>
                <td className="muted">
                  GPU {formatBytes(report.breakdown.gpu_bytes)} · host {formatBytes(report.breakdown.host_bytes)}
                </td>
              </tr>
            </tbody>
          </table>
        </>
      )}
      <h3 style={{ fontSize: 14 }}>Checks</h3>
      <table className="t" aria-label="Checks">
        <tbody>
          {report.checks.map((c, i) => (
            <tr key={i}>
              <td style={{ width: 90 }}>
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
      {report.command && (
        <>
          <h3 style={{ fontSize: 14 }}>What would run</h3>
          <pre className="block">{Array.isArray(report.command) ? report.command.join(' ') : JSON.stringify(report.command, null, 2)}</pre>
        </>
      )}
    </div>
  );
}

