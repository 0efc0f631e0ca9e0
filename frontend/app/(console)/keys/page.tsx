'use client';

import { useState } from 'react';
import { api } from '@/lib/api';
import type { KeyInfo } from '@/lib/types';
import { useAuth } from '@/components/auth';
import { Badge, CopyButton, Empty, ErrorBox, Modal, PageHead, useLoad, when } from '@/components/ui';

const SCOPES: Array<[string, string]> = [
  ['inference', 'call the OpenAI API'],
  ['models:read', 'list models and their state'],
  ['models:write', 'deploy, start and stop models'],
  ['keys:write', 'manage API keys'],
  ['users:write', 'manage users'],
  ['usage:read', 'read usage'],
  ['chat', 'use the playground'],
  ['admin', 'everything'],
];

function keyState(k: KeyInfo): string {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && new Date(k.expires_at).getTime() < Date.now()) return 'expired';
  return 'active';
}

const list = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);

export default function KeysPage() {
  const { me } = useAuth();
  const keys = useLoad(() => api<KeyInfo[]>('/admin/keys'), []);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<(KeyInfo & { key: string }) | null>(null);
  const [error, setError] = useState<unknown>(null);
  const revoke = async (k: KeyInfo) => {
    const local = k.name === 'cortexctl-local' ? ' It is the key cortexctl on the host uses: the CLI stops working until a new one is made.' : '';
    if (!window.confirm(`Revoke the key ${k.name}? Clients using it get 401 within seconds.${local}`)) return;
    setError(null);
    try {
      await api(`/admin/keys/${k.id}/revoke`, { method: 'POST' });
      keys.reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <PageHead title="API keys" sub={`Keys of ${me?.org ?? 'your organization'} for OpenAI-compatible clients`}>
        <button className="btn primary" onClick={() => setCreating(true)}>
          + Create key
        </button>
      </PageHead>
      <ErrorBox error={keys.error || error} />
      {created && (
        <div className="card" style={{ borderColor: '#a7f3d0' }} role="status">
          <h2>Key “{created.name}” created</h2>
          <p>Copy it now: it is shown only once and stored only as a hash.</p>
          <div className="secret">
            <span data-testid="new-key" style={{ flex: 1 }}>
              {created.key}
            </span>
            <CopyButton text={created.key} />
          </div>
          <p className="muted" style={{ marginBottom: 0 }}>
            Use it as <code>OpenAI(base_url=&quot;{typeof window !== 'undefined' ? window.location.origin : ''}/v1&quot;, api_key=&quot;…&quot;)</code>.{' '}
            <button className="btn small ghost" onClick={() => setCreated(null)}>
              Done
            </button>
          </p>
        </div>
      )}
      <div className="card">
        {keys.data && keys.data.length === 0 ? (
          <Empty title="No API keys yet">
            <p>Create one for each client or application, with only the scopes it needs.</p>
          </Empty>
        ) : (
          <table className="t" aria-label="API keys">
            <thead>
              <tr>
                <th>Name</th>
                <th>Prefix</th>
                <th>Scopes</th>
                <th>Models</th>
                <th>Limits</th>
                <th>Expires</th>
                <th>Last used</th>
                <th>State</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(keys.data ?? []).map((k) => (
                <tr key={k.id} data-key={k.name}>
                  <td>
                    <strong>{k.name}</strong>
                  </td>
                  <td className="mono">{k.prefix}…</td>
                  <td>{k.scopes.join(', ')}</td>
                  <td>{k.allowed_models.length ? k.allowed_models.join(', ') : <span className="muted">all</span>}</td>
                  <td className="muted">
                    {[k.rpm_limit && `${k.rpm_limit} rpm`, k.tpm_limit && `${k.tpm_limit} tpm`, k.max_concurrent && `${k.max_concurrent} conc.`, k.allowed_ips.length && `IPs: ${k.allowed_ips.join(' ')}`]
                      .filter(Boolean)
                      .join(' · ') || '—'}
                  </td>
                  <td>{when(k.expires_at)}</td>
                  <td>{when(k.last_used_at)}</td>
                  <td>
                    <Badge state={keyState(k)} />
                  </td>
                  <td>
                    {!k.revoked_at && (
                      <button className="btn small danger" onClick={() => revoke(k)} aria-label={`Revoke ${k.name}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {creating && (
        <CreateKey
          mayGrant={(s) => !!me && (me.scopes.includes('admin') || me.scopes.includes(s))}
          onClose={() => setCreating(false)}
          onCreated={(k) => {
            setCreating(false);
            setCreated(k);
            keys.reload();
          }}
        />
      )}
    </>
  );
}

function CreateKey({ mayGrant, onClose, onCreated }: { mayGrant: (s: string) => boolean; onClose: () => void; onCreated: (k: KeyInfo & { key: string }) => void }) {
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>(mayGrant('inference') ? ['inference'] : []);
  const [models, setModels] = useState('');
  const [ips, setIps] = useState('');
  const [rpm, setRpm] = useState('');
  const [tpm, setTpm] = useState('');
  const [conc, setConc] = useState('');
  const [expires, setExpires] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const toggle = (s: string) => setScopes((cur) => (cur.includes(s) ? cur.filter((x) => x !== s) : [...cur, s]));
  const intOrNull = (v: string) => (v.trim() ? Number(v) : null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const k = await api<KeyInfo & { key: string }>('/admin/keys', {
        method: 'POST',
        body: {
          name,
          scopes,
          allowed_models: list(models),
          allowed_ips: list(ips),
          rpm_limit: intOrNull(rpm),
          tpm_limit: intOrNull(tpm),
          max_concurrent: intOrNull(conc),
          expires_at: expires ? new Date(expires + 'T23:59:59').toISOString() : null,
        },
      });
      onCreated(k);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title="Create an API key" onClose={onClose}>
      <form onSubmit={submit}>
        <ErrorBox error={error} />
        <label className="f">
          <span>Name</span>
          <input type="text" required pattern="[A-Za-z0-9_.@\-]+" title="letters, digits, _ . @ -" value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. billing-service" />
        </label>
        <fieldset className="f" style={{ border: 0, padding: 0, margin: '0 0 12px' }}>
          <legend style={{ fontWeight: 600, fontSize: 13, marginBottom: 4 }}>Scopes</legend>
          <div className="checks">
            {SCOPES.filter(([s]) => mayGrant(s)).map(([s, what]) => (
              <label key={s} title={what}>
                <input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} /> {s}
              </label>
            ))}
          </div>
        </fieldset>
        <label className="f">
          <span>
            Allowed models <small>(served names, comma-separated; empty = all)</small>
          </span>
          <input type="text" value={models} onChange={(e) => setModels(e.target.value)} />
        </label>
        <label className="f">
          <span>
            IP allowlist <small>(CIDRs, e.g. 10.0.0.0/8; empty = any address)</small>
          </span>
          <input type="text" value={ips} onChange={(e) => setIps(e.target.value)} />
        </label>
        <div className="row">
          <label className="f">
            <span>Requests / min</span>
            <input type="number" min={1} value={rpm} onChange={(e) => setRpm(e.target.value)} />
          </label>
          <label className="f">
            <span>Tokens / min</span>
            <input type="number" min={1} value={tpm} onChange={(e) => setTpm(e.target.value)} />
          </label>
          <label className="f">
            <span>Concurrent</span>
            <input type="number" min={1} value={conc} onChange={(e) => setConc(e.target.value)} />
          </label>
          <label className="f">
            <span>Expires</span>
            <input type="date" value={expires} onChange={(e) => setExpires(e.target.value)} />
          </label>
        </div>
        <div className="actions">
          <button className="btn primary" type="submit" disabled={busy || scopes.length === 0}>
            {busy ? 'Creating…' : 'Create key'}
          </button>
          <button className="btn" type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}
