'use client';

import { useState } from 'react';
import { api } from '@/lib/api';
import { useAuth } from '@/components/auth';
import { Badge, CopyButton, ErrorBox, Modal, PageHead, useLoad, when } from '@/components/ui';

interface User {
  id: number;
  org_id: number;
  username: string;
  role: string;
  is_active: boolean;
  created_at: string;
}
interface Org {
  id: number;
  name: string;
  rpm_limit: number | null;
  tpm_limit: number | null;
  max_concurrent: number | null;
  allowed_ips: string[];
  created_at: string;
}
const RANK: Record<string, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };

export default function UsersPage() {
  const { me } = useAuth();
  const operator = !!me?.operator;
  const orgs = useLoad(() => api<Org[]>('/admin/orgs').catch(() => [] as Org[]), []);
  const [org, setOrg] = useState<string>('');
  const users = useLoad(() => api<User[]>(`/admin/users${org ? `?org=${encodeURIComponent(org)}` : ''}`), [org]);
  const [creating, setCreating] = useState(false);
  const [creatingOrg, setCreatingOrg] = useState(false);
  const [password, setPassword] = useState<{ user: string; password: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const myRank = RANK[me?.role ?? 'viewer'] ?? 0;
  const roles = Object.keys(RANK).filter((r) => RANK[r] <= myRank);
  const orgQ = org ? `?org=${encodeURIComponent(org)}` : '';

  const update = async (u: User, changes: Partial<User>) => {
    setError(null);
    try {
      await api(`/admin/users/${u.id}${orgQ}`, { method: 'PATCH', body: changes });
      users.reload();
    } catch (e) {
      setError(e);
    }
  };
  const remove = async (u: User) => {
    if (!window.confirm(`Delete the user ${u.username}?`)) return;
    setError(null);
    try {
      await api(`/admin/users/${u.id}${orgQ}`, { method: 'DELETE' });
      users.reload();
    } catch (e) {
      setError(e);
    }
  };
  const shownOrg = org || me?.org;
  return (
    <>
      <PageHead title="Users & orgs" sub={operator ? 'Organizations on this appliance and their console users' : `Console users of ${me?.org}`}>
        {operator && (
          <button className="btn" onClick={() => setCreatingOrg(true)}>
            + New organization
          </button>
        )}
        <button className="btn primary" onClick={() => setCreating(true)}>
          + Add user
        </button>
      </PageHead>
      <ErrorBox error={users.error || error} />
      {password && (
        <div className="card" role="status">
          <h2>Password for {password.user}</h2>
          <p>Shown once. Give it to the user; they can change it under Account.</p>
          <div className="secret">
            <span style={{ flex: 1 }}>{password.password}</span>
            <CopyButton text={password.password} />
          </div>
        </div>
      )}
      <div className="grid two" style={{ alignItems: 'start' }}>
        <div className="card">
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <h2>Users of {shownOrg}</h2>
            {operator && (orgs.data?.length ?? 0) > 1 && (
              <label className="row" style={{ gap: 6 }}>
                <span className="muted">Organization</span>
                <select value={org} onChange={(e) => setOrg(e.target.value)} style={{ width: 'auto' }}>
                  <option value="">{me?.org} (yours)</option>
                  {orgs.data!.filter((o) => o.name !== me?.org).map((o) => (
                    <option key={o.id} value={o.name}>
                      {o.name}
                    </option>
                  ))}
                </select>
              </label>
            )}
          </div>
          <table className="t" aria-label="Users">
            <thead>
              <tr>
                <th>User</th>
                <th>Role</th>
                <th>State</th>
                <th>Created</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(users.data ?? []).map((u) => {
                const editable = (RANK[u.role] ?? 0) <= myRank && u.username !== me?.name;
                return (
                  <tr key={u.id} data-user={u.username}>
                    <td>
                      <strong>{u.username}</strong>
                    </td>
                    <td>
                      {editable ? (
                        <select aria-label={`Role of ${u.username}`} value={u.role} onChange={(e) => update(u, { role: e.target.value })} style={{ width: 'auto' }}>
                          {roles.map((r) => (
                            <option key={r}>{r}</option>
                          ))}
                        </select>
                      ) : (
                        u.role
                      )}
                    </td>
                    <td>
                      <Badge state={u.is_active ? 'active' : 'revoked'} label={u.is_active ? 'active' : 'disabled'} />
                    </td>
                    <td className="muted">{when(u.created_at)}</td>
                    <td>
                      {editable && (
                        <div className="actions">
                          <button className="btn small" onClick={() => update(u, { is_active: !u.is_active })}>
                            {u.is_active ? 'Disable' : 'Enable'}
                          </button>
                          <button className="btn small danger" onClick={() => remove(u)}>
                            Delete
                          </button>
                        </div>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
        <div className="card">
          <h2>{operator ? 'Organizations' : 'Your organization'}</h2>
          <table className="t" aria-label="Organizations">
            <thead>
              <tr>
                <th>Name</th>
                <th>Limits</th>
                <th>IP allowlist</th>
              </tr>
            </thead>
            <tbody>
              {(orgs.data ?? []).map((o) => (
                <tr key={o.id} data-org={o.name}>
                  <td>
                    <strong>{o.name}</strong>
                  </td>
                  <td className="muted">
                    {[o.rpm_limit && `${o.rpm_limit} rpm`, o.tpm_limit && `${o.tpm_limit} tpm`, o.max_concurrent && `${o.max_concurrent} concurrent`].filter(Boolean).join(' · ') || 'unlimited'}
                  </td>
                  <td className="mono">{o.allowed_ips.join(' ') || 'any'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      {creating && (
        <CreateUser
          roles={roles}
          org={org}
          onClose={() => setCreating(false)}
          onCreated={(u, pw) => {
            setCreating(false);
            if (pw) setPassword({ user: u, password: pw });
            users.reload();
          }}
        />
      )}
      {creatingOrg && (
        <CreateOrg
          onClose={() => setCreatingOrg(false)}
          onCreated={() => {
            setCreatingOrg(false);
            orgs.reload();
          }}
        />
      )}
    </>
  );
}

function CreateUser({ roles, org, onClose, onCreated }: { roles: string[]; org: string; onClose: () => void; onCreated: (u: string, pw: string | null) => void }) {
  const [username, setUsername] = useState('');
  const [role, setRole] = useState('member');
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    try {
      const r = await api<{ username: string; password: string | null }>('/admin/users', { method: 'POST', body: { username, role, org: org || undefined } });
      onCreated(r.username, r.password);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="Add a user" onClose={onClose}>
      <form onSubmit={submit}>
        <ErrorBox error={error} />
        <label className="f">
          <span>Username</span>
          <input type="text" required value={username} onChange={(e) => setUsername(e.target.value)} />
        </label>
        <label className="f">
          <span>Role</span>
          <select value={role} onChange={(e) => setRole(e.target.value)}>
            {roles.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <p className="muted">A password is generated and shown once.</p>
        <button className="btn primary" type="submit">
          Add user
        </button>
      </form>
    </Modal>
  );
}

function CreateOrg({ onClose, onCreated }: { onClose: () => void; onCreated: () => void }) {
  const [name, setName] = useState('');
  const [rpm, setRpm] = useState('');
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    try {
      await api('/admin/orgs', { method: 'POST', body: { name, rpm_limit: rpm ? Number(rpm) : null } });
      onCreated();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="New organization" onClose={onClose}>
      <form onSubmit={submit}>
        <ErrorBox error={error} />
        <label className="f">
          <span>Name</span>
          <input type="text" required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label className="f">
          <span>
            Requests / min <small>(org-wide; empty = unlimited)</small>
          </span>
          <input type="number" min={1} value={rpm} onChange={(e) => setRpm(e.target.value)} />
        </label>
        <button className="btn primary" type="submit">
          Create organization
        </button>
      </form>
    </Modal>
  );
}
