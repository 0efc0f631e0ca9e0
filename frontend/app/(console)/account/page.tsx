'use client';

import { useState } from 'react';
import { api } from '@/lib/api';
import { useAuth } from '@/components/auth';
import { ErrorBox, PageHead } from '@/components/ui';

export default function AccountPage() {
  const { me } = useAuth();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone(false);
    if (next !== again) {
      setError(new Error('The new passwords differ: type the same one twice.'));
      return;
    }
    try {
      await api('/auth/password', { method: 'POST', body: { current_password: current, new_password: next } });
      setDone(true);
      setCurrent('');
      setNext('');
      setAgain('');
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <PageHead title="Account" sub={`${me?.name} · ${me?.role} in ${me?.org}`} />
      <div className="card" style={{ maxWidth: 460 }}>
        <h2>Change password</h2>
        <ErrorBox error={error} />
        {done && <div className="alert ok">Password changed. Your other sessions have ended.</div>}
        <form onSubmit={submit}>
          <label className="f">
            <span>Current password</span>
            <input type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
          </label>
          <label className="f">
            <span>New password</span>
            <input type="password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} />
          </label>
          <label className="f">
            <span>New password, again</span>
            <input type="password" autoComplete="new-password" required value={again} onChange={(e) => setAgain(e.target.value)} />
          </label>
          <button className="btn primary" type="submit">
            Change password
          </button>
        </form>
      </div>
      <div className="card" style={{ maxWidth: 460 }}>
        <h2>Permissions</h2>
        <p className="muted">Scopes of your role: {me?.scopes.join(', ')}</p>
      </div>
    </>
  );
}
