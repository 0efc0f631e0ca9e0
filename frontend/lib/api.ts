/** The daemon's API from the browser: same origin, session cookie, CSRF header on writes. */

export class ApiError extends Error {
  constructor(
    message: string,
    public status: number,
    public code: string | null = null,
    public param: string | null = null,
  ) {
    super(message);
  }
}

export function csrfToken(): string | null {
  if (typeof document === 'undefined') return null;
  const m = document.cookie.match(/(?:^|;\s*)cortex_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : null;
}

export function headersFor(method: string, json: boolean): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json' };
  if (json) h['content-type'] = 'application/json';
  if (!['GET', 'HEAD'].includes(method)) {
    const t = csrfToken();
    if (t) h['x-csrf-token'] = t;
  }
  return h;
}

export async function errorFrom(resp: Response): Promise<ApiError> {
  let message = `${resp.status} ${resp.statusText}`;
  let code: string | null = null;
  let param: string | null = null;
  try {
    const body = await resp.json();
    if (body?.error?.message) {
      message = body.error.message;
      code = body.error.code ?? null;
      param = body.error.param ?? null;
    } else if (body?.detail) {
      message = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
    }
  } catch {
    /* not JSON */
  }
  return new ApiError(message, resp.status, code, param);
}

export async function api<T = unknown>(
  path: string,
  opts: { method?: string; body?: unknown; signal?: AbortSignal; text?: boolean } = {},
): Promise<T> {
  const method = opts.method ?? 'GET';
  const resp = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: headersFor(method, opts.body !== undefined),
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    signal: opts.signal,
  });
  if (resp.status === 401 && typeof window !== 'undefined' && !path.startsWith('/auth/login')) {
    window.dispatchEvent(new CustomEvent('cortex:unauthenticated'));
  }
  if (!resp.ok) throw await errorFrom(resp);
  if (resp.status === 204) return undefined as T;
  if (opts.text) return (await resp.text()) as T;
  return (await resp.json()) as T;
}

export interface Me {
  kind: string;
  name: string;
  org_id: number;
  org: string;
  role: string | null;
  scopes: string[];
  operator: boolean;
  csrf_token: string | null;
}

export function can(me: Me | null, scope: string): boolean {
  return !!me && (me.scopes.includes('admin') || me.scopes.includes(scope));
}

/** Appliance-wide changes (models, recipes, orgs) belong to operators only. */
export function canOperate(me: Me | null): boolean {
  return !!me && me.operator;
}
