'use client';

import Link from 'next/link';
import { usePathname } from 'next/navigation';
import type { ReactNode } from 'react';
import { can, type Me } from '@/lib/api';
import { AuthProvider, useAuth } from './auth';

interface NavItem {
  href: string;
  label: string;
  icon: string;
  allowed: (me: Me) => boolean;
}

export const NAV: NavItem[] = [
  { href: '/', label: 'Dashboard', icon: '◎', allowed: (m) => can(m, 'models:read') || can(m, 'usage:read') },
  { href: '/chat', label: 'Chat playground', icon: '✦', allowed: (m) => can(m, 'chat') },
  { href: '/models', label: 'Models', icon: '▣', allowed: (m) => can(m, 'models:read') },
  { href: '/recipes', label: 'Recipes', icon: '☰', allowed: (m) => m.operator }, // recipes name host paths: operators only
  { href: '/keys', label: 'API keys', icon: '◈', allowed: (m) => can(m, 'keys:write') },
  { href: '/users', label: 'Users & orgs', icon: '☺', allowed: (m) => can(m, 'users:write') },
  { href: '/usage', label: 'Usage', icon: '▤', allowed: (m) => can(m, 'usage:read') },
  { href: '/system', label: 'System & health', icon: '♥', allowed: (m) => m.operator },
  { href: '/audit', label: 'Audit log', icon: '⌕', allowed: (m) => can(m, 'admin') },
  { href: '/guide', label: 'Guide', icon: '?', allowed: () => true },
];

function Side() {
  const { me, logout } = useAuth();
  const path = usePathname();
  return (
    <nav className="side" aria-label="Console">
      <div className="brand">
        <span className="logo" aria-hidden>
          ◆
        </span>
        CORTEX
      </div>
      <div className="nav">
        {me &&
          NAV.filter((n) => n.allowed(me)).map((n) => (
            <Link key={n.href} href={n.href} aria-current={path === n.href ? 'page' : undefined}>
              <span className="ico" aria-hidden>
                {n.icon}
              </span>
              {n.label}
            </Link>
          ))}
      </div>
      {me && (
        <div className="who">
          <div className="name" data-testid="whoami">
            {me.name}
          </div>
          <div>
            {me.role} · {me.org}
          </div>
          <div className="row" style={{ gap: 6 }}>
            <Link className="btn small" href="/account">
              Account
            </Link>
            <button className="btn small" onClick={logout}>
              Log out
            </button>
          </div>
        </div>
      )}
    </nav>
  );
}

export function Shell({ children }: { children: ReactNode }) {
  return (
    <AuthProvider>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <div className="shell">
        <Side />
        <main className="main" id="main">
          <Gate>{children}</Gate>
        </main>
      </div>
    </AuthProvider>
  );
}

function Gate({ children }: { children: ReactNode }) {
  const { me, loading } = useAuth();
  if (loading || !me) return <p className="muted">Loading…</p>;
  return <>{children}</>;
}
