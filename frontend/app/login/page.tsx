'use client';

import { useState, type FormEvent } from 'react';
import { api } from '@/lib/api';

function nextTarget(): string {
  const next = new URLSearchParams(window.location.search).get('next') || '/';
  // only same-site paths: never an open redirect
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export default function LoginPage() {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('/auth/login', { method: 'POST', body: { username, password } });
      window.location.replace(nextTarget());
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <div className="login-wrap">
      <form className="login" onSubmit={submit} aria-label="Log in">
        <div className="brand">
          <span className="logo" aria-hidden>
            ◆
          </span>
          CORTEX
        </div>
        <h1 style={{ fontSize: 18, margin: '0 0 14px' }}>Log in to the console</h1>
        {error && (
          <div className="alert error" role="alert">
            {error}
          </div>
        )}
        <label className="f">
          <span>Username</span>
          <input type="text" name="username" autoComplete="username" autoFocus required value={username} onChange={(e) => setUsername(e.target.value)} />
        </label>
        <label className="f">
          <span>Password</span>
          <input type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <button className="btn primary" type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <p className="muted" style={{ fontSize: 12, marginTop: 14 }}>
          First time? <code>cortexctl up</code> printed the admin password; <code>cortexctl users update NAME --password-stdin</code> sets a new one.
        </p>
      </form>
    </div>
  );
}
