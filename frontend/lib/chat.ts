/** The playground's calls to /api/chat/*; a turn streams back as OpenAI SSE. */
import { api, errorFrom, headersFor } from './api';
import { chatItems, SseParser, type ChatStreamItem } from './sse';

export interface ChatModel {
  name: string;
  engine: string;
  state: string;
  ready: boolean;
  context_length: number | null;
  request_defaults: Record<string, unknown>;
}
export interface ChatSession {
  id: number;
  title: string;
  model: string;
  created_at: string;
  updated_at: string;
}
export interface ChatMessage {
  id?: number;
  role: 'user' | 'assistant' | 'system';
  content: string;
}

export const chatApi = {
  models: () => api<ChatModel[]>('/api/chat/models'),
  sessions: (q?: string) => api<ChatSession[]>(`/api/chat/sessions${q ? `?q=${encodeURIComponent(q)}` : ''}`),
  create: (model: string) => api<ChatSession>('/api/chat/sessions', { method: 'POST', body: { model } }),
  get: (id: number) => api<ChatSession & { messages: ChatMessage[] }>(`/api/chat/sessions/${id}`),
  rename: (id: number, title: string) => api<ChatSession>(`/api/chat/sessions/${id}`, { method: 'PATCH', body: { title } }),
  remove: (id: number) => api<void>(`/api/chat/sessions/${id}`, { method: 'DELETE' }),
};

/** Send one turn and call `onItem` for each stream item; resolves when the stream ends. */
export async function streamTurn(
  sessionId: number,
  body: { content: string; model?: string; system?: string; params: Record<string, unknown> },
  onItem: (item: ChatStreamItem) => void,
  signal: AbortSignal,
): Promise<void> {
  const resp = await fetch(`/api/chat/sessions/${sessionId}/messages`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { ...headersFor('POST', true), accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal,
  });
  if (!resp.ok) throw await errorFrom(resp);
  if (!resp.body) throw new Error('The browser gave no response stream.');
  const reader = resp.body.getReader();
  const parser = new SseParser();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (const ev of parser.feed(value)) for (const item of chatItems(ev)) onItem(item);
  }
  for (const ev of parser.flush()) for (const item of chatItems(ev)) onItem(item);
}
