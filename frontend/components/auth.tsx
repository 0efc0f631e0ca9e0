'use client';

import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, type Me } from '@/lib/api';

interface AuthState {
  me: Me | null;
  loading: boolean;
  refresh: () => Promise<void>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<AuthState>({
  me: null,
  loading: true,
  refresh: async () => {},
  logout: async () => {},
});

export function useAuth() {
  return useContext(AuthContext);
}

function toLogin() {
  const here = window.location.pathname + window.location.search;
  window.location.replace('/login?next=' + encodeURIComponent(here));
}

/** Loads /auth/me; without a session (or when one ends) the browser goes to /login. */
export function AuthProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);
  const refresh = useCallback(async () => {
    try {
      setMe(await api<Me>('/auth/me'));
    } catch {
      toLogin();
    } finally {
      setLoading(false);
    }
  }, []);
  const logout = useCallback(async () => {
    try {
      await api('/auth/logout', { method: 'POST' });
    } finally {
      window.location.replace('/login');
    }
  }, []);
  useEffect(() => {
    refresh();
    const gone = () => toLogin();
    window.addEventListener('cortex:unauthenticated', gone);
    return () => window.removeEventListener('cortex:unauthenticated', gone);
  }, [refresh]);
  return <AuthContext.Provider value={{ me, loading, refresh, logout }}>{children}</AuthContext.Provider>;
}
