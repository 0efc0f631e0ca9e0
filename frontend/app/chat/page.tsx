'use client';

import Link from 'next/link';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { can } from '@/lib/api';
import { chatApi, streamTurn, type ChatMessage, type ChatModel, type ChatSession } from '@/lib/chat';
import { contextFraction, estimateTokens, newTiming, onToken, tokensPerSecond, ttftMs, type StreamTiming } from '@/lib/metrics';
import { AuthProvider, useAuth } from '@/components/auth';
import { MessageMarkdown } from '@/components/MessageMarkdown';
import { ErrorBox } from '@/components/ui';

export default function ChatPage() {
  return (
    <AuthProvider>
      <Playground />
    </AuthProvider>
  );
}

interface Shown extends ChatMessage {
  streaming?: boolean;
  error?: string;
  stopped?: boolean;
}

const CONTROLS: Array<{ key: string; label: string; min: number; max: number; step: number; fallback: number }> = [
  { key: 'temperature', label: 'Temperature', min: 0, max: 2, step: 0.05, fallback: 0.8 },
  { key: 'top_p', label: 'Top p', min: 0, max: 1, step: 0.01, fallback: 0.95 },
  { key: 'max_tokens', label: 'Max tokens', min: 1, max: 8192, step: 1, fallback: 512 },
];

function Playground() {
  const { me, loading } = useAuth();
  const [models, setModels] = useState<ChatModel[] | null>(null);
  const [model, setModel] = useState('');
  const [sessions, setSessions] = useState<ChatSession[]>([]);
  const [query, setQuery] = useState('');
  const [active, setActive] = useState<number | null>(null);
  const [messages, setMessages] = useState<Shown[]>([]);
  const [input, setInput] = useState('');
  const [system, setSystem] = useState('');
  const [overrides, setOverrides] = useState<Record<string, number>>({});
  const [timing, setTiming] = useState<StreamTiming | null>(null);
  const [usage, setUsage] = useState<{ prompt: number; completion: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [now, setNow] = useState(Date.now());
  const abort = useRef<AbortController | null>(null);
  const bottom = useRef<HTMLDivElement>(null);
  const composer = useRef<HTMLTextAreaElement>(null);
  const search = useRef<HTMLInputElement>(null);
  const streaming = messages.some((m) => m.streaming);

  const current = models?.find((m) => m.name === model) ?? null;
  const defaults = current?.request_defaults ?? {};

  const loadSessions = useCallback(async (q = '') => {
    try {
      setSessions(await chatApi.sessions(q));
    } catch (e) {
      setError(e);
    }
  }, []);

  useEffect(() => {
    if (!me) return;
    chatApi
      .models()
      .then((ms) => {
        setModels(ms);
        setModel((cur) => cur || ms.find((m) => m.ready)?.name || ms[0]?.name || '');
      })
      .catch(setError);
    loadSessions();
    const s = Number(new URLSearchParams(window.location.search).get('s'));
    if (s) open(s);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [me]);

  useEffect(() => {
    const id = setTimeout(() => me && loadSessions(query), 250);
    return () => clearTimeout(id);
  }, [query, me, loadSessions]);

  useEffect(() => {
    bottom.current?.scrollIntoView({ block: 'end' });
  }, [messages]);

  useEffect(() => {
    if (!streaming) return;
    const id = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(id);
  }, [streaming]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && abort.current) abort.current.abort();
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        search.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  async function open(id: number) {
    abort.current?.abort();
    setError(null);
    try {
      const s = await chatApi.get(id);
      setActive(s.id);
      setModel(s.model);
      setMessages(s.messages.filter((m) => m.role !== 'system'));
      setTiming(null);
      setUsage(null);
      window.history.replaceState(null, '', `/chat?s=${s.id}`);
    } catch (e) {
      setError(e);
    }
  }

  function newChat() {
    abort.current?.abort();
    setActive(null);
    setMessages([]);
    setTiming(null);
    setUsage(null);
    window.history.replaceState(null, '', '/chat');
    composer.current?.focus();
  }

  async function send() {
    const content = input.trim();
    if (!content || streaming || !model) return;
    setError(null);
    let sessionId = active;
    try {
      if (sessionId === null) {
        const s = await chatApi.create(model);
        sessionId = s.id;
        setActive(s.id);
        window.history.replaceState(null, '', `/chat?s=${s.id}`);
      }
    } catch (e) {
      setError(e);
      return;
    }
    setInput('');
    const history = [...messages, { role: 'user' as const, content }];
    setMessages([...history, { role: 'assistant', content: '', streaming: true }]);
    const ctl = new AbortController();
    abort.current = ctl;
    let t = newTiming(Date.now());
    setTiming(t);
    setUsage({ prompt: estimateTokens(system + history.map((m) => m.content).join('\n')), completion: 0 });
    const update = (fn: (m: Shown) => Shown) =>
      setMessages((cur) => {
        const copy = cur.slice();
        copy[copy.length - 1] = fn(copy[copy.length - 1]);
        return copy;
      });
    try {
      await streamTurn(
        sessionId,
        { content, model, system: system || undefined, params: overrides },
        (item) => {
          if (item.kind === 'delta') {
            t = onToken(t, Date.now());
            setTiming(t);
            setUsage((u) => (u ? { ...u, completion: t.tokens } : u));
            update((m) => ({ ...m, content: m.content + item.text }));
          } else if (item.kind === 'usage') {
            setUsage({ prompt: item.usage.prompt_tokens, completion: item.usage.completion_tokens });
          } else if (item.kind === 'error') {
            update((m) => ({ ...m, error: item.message }));
          }
        },
        ctl.signal,
      );
      update((m) => ({ ...m, streaming: false }));
    } catch (e) {
      if (ctl.signal.aborted) update((m) => ({ ...m, streaming: false, stopped: true }));
      else update((m) => ({ ...m, streaming: false, error: e instanceof Error ? e.message : String(e) }));
    } finally {
      abort.current = null;
      loadSessions(query);
    }
  }

  async function rename(s: ChatSession) {
    const title = window.prompt('Rename this chat', s.title);
    if (!title || title === s.title) return;
    try {
      await chatApi.rename(s.id, title);
      loadSessions(query);
    } catch (e) {
      setError(e);
    }
  }

  async function remove(s: ChatSession) {
    if (!window.confirm(`Delete “${s.title}”?`)) return;
    try {
      await chatApi.remove(s.id);
      if (s.id === active) newChat();
      loadSessions(query);
    } catch (e) {
      setError(e);
    }
  }

  const fraction = contextFraction(usage?.prompt ?? 0, usage?.completion ?? 0, current?.context_length ?? null);
  const ttft = timing ? ttftMs(timing) : null;
  const tps = timing ? tokensPerSecond(timing, streaming ? now : undefined) : null;
  const readyModels = useMemo(() => (models ?? []).filter((m) => m.ready), [models]);

  if (loading || !me) return <p style={{ padding: 24 }}>Loading…</p>;
  if (!can(me, 'chat'))
    return (
      <div style={{ padding: 40 }}>
        <h1>Chat playground</h1>
        <p>Your role ({me.role}) may not use the playground. Ask an admin for the member role.</p>
        <Link href="/">Back to the console</Link>
      </div>
    );

  return (
    <div className="chat">
      <aside aria-label="Conversations">
        <div style={{ padding: 12, display: 'grid', gap: 8, borderBottom: '1px solid var(--line)' }}>
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <Link href="/" className="brand" style={{ color: 'var(--ink)', padding: 0, fontSize: 15 }}>
              <span className="logo" aria-hidden>
                ◆
              </span>
              CORTEX
            </Link>
          </div>
          <button className="btn primary" onClick={newChat} style={{ justifyContent: 'center' }}>
            + New chat
          </button>
          <input ref={search} type="search" placeholder="Search chats (Ctrl+K)" aria-label="Search chats" value={query} onChange={(e) => setQuery(e.target.value)} />
        </div>
        <nav className="sessions" aria-label="Chat history">
          {sessions.length === 0 && <p className="muted" style={{ padding: 10 }}>{query ? 'No chat matches.' : 'No chats yet: type a message to start one.'}</p>}
          {sessions.map((s) => (
            <div key={s.id} className="sess" aria-current={s.id === active ? 'true' : undefined} data-session={s.id}>
              <button className="open" onClick={() => open(s.id)} title={s.title}>
                {s.title}
              </button>
              <span className="tools">
                <button className="btn small ghost" onClick={() => rename(s)} aria-label={`Rename ${s.title}`}>
                  ✎
                </button>
                <button className="btn small ghost" onClick={() => remove(s)} aria-label={`Delete ${s.title}`}>
                  ✕
                </button>
              </span>
            </div>
          ))}
        </nav>
        <div style={{ padding: 12, borderTop: '1px solid var(--line)', fontSize: 13 }} className="muted">
          {me.name} · {me.org}
        </div>
      </aside>

      <section className="conv" aria-label="Conversation">
        <div className="conv-head">
          <label className="row" style={{ gap: 8 }}>
            <span style={{ fontWeight: 600 }}>Model</span>
            <select aria-label="Model" value={model} onChange={(e) => setModel(e.target.value)} style={{ width: 'auto', minWidth: 200 }} disabled={streaming}>
              {(models ?? []).map((m) => (
                <option key={m.name} value={m.name} disabled={!m.ready}>
                  {m.name}
                  {m.ready ? '' : ` (${m.state})`}
                </option>
              ))}
            </select>
          </label>
          {current && <span className={`badge ${current.ready ? 'ok' : 'warn'}`}>{current.ready ? 'running' : current.state}</span>}
        </div>
        <div className="messages" aria-live="polite">
          <ErrorBox error={error} />
          {models && readyModels.length === 0 && (
            <div className="empty">
              <h3>No model is running</h3>
              <p>
                Start one under <Link href="/models">Models</Link>, or on the host: <code>cortexctl model start NAME --wait</code>.
              </p>
            </div>
          )}
          {messages.length === 0 && readyModels.length > 0 && (
            <div className="empty">
              <h3>Start a conversation</h3>
              <p>Messages go to {model}. Enter sends, Shift+Enter adds a line, Esc stops a reply.</p>
            </div>
          )}
          {messages.map((m, i) => (
            <div key={i} className={`msg ${m.role}${m.error ? ' error' : ''}`} data-role={m.role} data-streaming={m.streaming ? 'true' : undefined}>
              <div className="who" aria-hidden>
                {m.role === 'user' ? 'You' : 'AI'}
              </div>
              <div className={`body${m.streaming ? ' cursor' : ''}`}>
                {m.role === 'assistant' ? <MessageMarkdown text={m.content} /> : <p style={{ whiteSpace: 'pre-wrap', marginTop: 4 }}>{m.content}</p>}
                {m.stopped && <div className="muted">■ Stopped</div>}
                {m.error && <div role="alert">⚠ {m.error}</div>}
              </div>
            </div>
          ))}
          <div ref={bottom} />
        </div>
        <div className="composer">
          <form
            onSubmit={(e) => {
              e.preventDefault();
              send();
            }}
          >
            <textarea
              ref={composer}
              aria-label="Message"
              placeholder={model ? `Message ${model}…` : 'No model to talk to'}
              rows={2}
              value={input}
              onChange={(e) => setInput(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
                  e.preventDefault();
                  send();
                }
              }}
            />
            {streaming ? (
              <button type="button" className="btn danger" onClick={() => abort.current?.abort()}>
                ■ Stop
              </button>
            ) : (
              <button type="submit" className="btn primary" disabled={!input.trim() || !current?.ready}>
                Send
              </button>
            )}
          </form>
        </div>
      </section>

      <aside className="settings" aria-label="Settings and live metrics">
        <h2 style={{ fontSize: 14, margin: '0 0 10px' }}>Live</h2>
        <div className="stats">
          <div className="stat">
            <div className="label">TTFT</div>
            <div className="value" data-testid="ttft">
              {ttft === null ? '—' : `${Math.round(ttft)} ms`}
            </div>
          </div>
          <div className="stat">
            <div className="label">Tokens/s</div>
            <div className="value" data-testid="tps">
              {tps === null ? '—' : tps.toFixed(1)}
            </div>
          </div>
          <div className="stat">
            <div className="label">Prompt</div>
            <div className="value">{usage?.prompt ?? '—'}</div>
          </div>
          <div className="stat">
            <div className="label">Completion</div>
            <div className="value" data-testid="completion-tokens">
              {usage?.completion ?? '—'}
            </div>
          </div>
        </div>
        <div style={{ marginBottom: 16 }}>
          <div className="row" style={{ justifyContent: 'space-between', fontSize: 12 }}>
            <span className="muted">Context</span>
            <span className="muted">
              {usage ? usage.prompt + usage.completion : 0} / {current?.context_length ?? '?'}
            </span>
          </div>
          <div className={`bar${fraction !== null && fraction > 0.9 ? ' full' : fraction !== null && fraction > 0.7 ? ' hot' : ''}`} role="progressbar" aria-label="Context used" aria-valuemin={0} aria-valuemax={100} aria-valuenow={fraction === null ? undefined : Math.round(fraction * 100)}>
            <div style={{ width: `${(fraction ?? 0) * 100}%` }} />
          </div>
        </div>
        <h2 style={{ fontSize: 14, margin: '0 0 10px' }}>Sampling</h2>
        {CONTROLS.map((c) => {
          const def = typeof defaults[c.key] === 'number' ? (defaults[c.key] as number) : null;
          const value = overrides[c.key] ?? def ?? c.fallback;
          return (
            <label key={c.key} className="f">
              <span>
                {c.label}{' '}
                <small>
                  {value}
                  {overrides[c.key] === undefined ? (def !== null ? ' (recipe default)' : ' (engine default)') : ''}
                </small>
              </span>
              <input
                type={c.key === 'max_tokens' ? 'number' : 'range'}
                min={c.min}
                max={c.max}
                step={c.step}
                value={value}
                aria-label={c.label}
                onChange={(e) => setOverrides((o) => ({ ...o, [c.key]: Number(e.target.value) }))}
                style={{ width: '100%' }}
              />
            </label>
          );
        })}
        <button className="btn small" onClick={() => setOverrides({})} disabled={Object.keys(overrides).length === 0}>
          Reset to recipe defaults
        </button>
        <label className="f" style={{ marginTop: 16 }}>
          <span>System prompt</span>
          <textarea rows={4} value={system} onChange={(e) => setSystem(e.target.value)} placeholder="Optional instructions sent first" />
        </label>
        <p className="muted" style={{ fontSize: 12 }}>
          Turns count against your organization&apos;s rate limits and appear under Usage. <Link href="/">Console</Link>
        </p>
      </aside>
    </div>
  );
}
