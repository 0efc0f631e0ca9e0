'use client';

import { useState } from 'react';
import { api } from '@/lib/api';
import { toCsv } from '@/lib/csv';
import { Empty, ErrorBox, PageHead, download, useLoad, when } from '@/components/ui';

interface Audit {
  id: number;
  created_at: string;
  actor: string;
  action: string;
  target: string | null;
  client_ip: string | null;
  details: Record<string, unknown> | null;
}

export default function AuditPage() {
  const [action, setAction] = useState('');
  const [applied, setApplied] = useState('');
  const log = useLoad(() => api<Audit[]>(`/admin/audit?limit=500${applied ? `&action=${encodeURIComponent(applied)}` : ''}`), [applied], 10000);
  return (
    <>
      <PageHead title="Audit log" sub="Every change made in your organization: who, what, when and from where">
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            setApplied(action.trim());
          }}
        >
          <input type="search" aria-label="Filter by action" placeholder="action, e.g. keys.create" value={action} onChange={(e) => setAction(e.target.value)} style={{ width: 220 }} />
          <button className="btn" type="submit">
            Filter
          </button>
        </form>
        <button className="btn" disabled={!log.data?.length} onClick={() => download('cortex-audit.csv', toCsv((log.data ?? []) as unknown as Record<string, unknown>[]), 'text/csv')}>
          Export CSV
        </button>
      </PageHead>
      <ErrorBox error={log.error} />
      <div className="card">
        {log.data && log.data.length === 0 ? (
          <Empty title="Nothing recorded yet">{applied ? <p>No entries for “{applied}”.</p> : null}</Empty>
        ) : (
          <table className="t" aria-label="Audit log">
            <thead>
              <tr>
                <th>When</th>
                <th>Actor</th>
                <th>Action</th>
                <th>Target</th>
                <th>From</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {(log.data ?? []).map((a) => (
                <tr key={a.id}>
                  <td className="muted">{when(a.created_at)}</td>
                  <td>{a.actor}</td>
                  <td className="mono">{a.action}</td>
                  <td>{a.target ?? '—'}</td>
                  <td className="mono">{a.client_ip ?? '—'}</td>
                  <td className="mono muted">{a.details ? JSON.stringify(a.details) : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}
