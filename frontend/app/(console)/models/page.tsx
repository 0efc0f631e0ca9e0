'use client';

import Link from 'next/link';
import { useEffect, useState } from 'react';
import { api, ApiError, can, canOperate } from '@/lib/api';
import type { ModelInfo, RecipeInfo } from '@/lib/types';
import { lineErrors, type LineError } from '@/lib/yamlerrors';
import { useAuth } from '@/components/auth';
import { Badge, Empty, ErrorBox, Modal, PageHead, useLoad, when } from '@/components/ui';
import { YamlEditor } from '@/components/YamlEditor';
import { ReportView, type Report } from '@/components/ReportView';

const EXAMPLE = `apiVersion: cortex/v1
kind: Recipe
metadata:
  name: my-model
  description: A GGUF model on llama.cpp
spec:
  engine: llamacpp
  model:
    path: /path/to/model.gguf
  served_name: my-model
  args:
    context_length: 4096
`;

export default function ModelsPage() {
  const { me } = useAuth();
  const writer = canOperate(me) && can(me, 'models:write');
  const list = useLoad(() => api<ModelInfo[]>('/admin/models'), [], 3000);
  const [selected, setSelected] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);

  useEffect(() => {
    const q = new URLSearchParams(window.location.search).get('name');
    if (q) setSelected(q);
  }, []);
  const model = list.data?.find((m) => m.name === selected) ?? null;

  return (
    <>
      <PageHead title="Models" sub="Deployments of recipes and their live state">
        {writer && (
          <button className="btn primary" onClick={() => setCreating(true)}>
            + Create model
          </button>
        )}
      </PageHead>
      <ErrorBox error={list.error} />
      <div className="card">
        {list.data && list.data.length === 0 ? (
          <Empty title="No models yet">
            <p>A model is a recipe deployed on this host. {writer ? 'Create one from a recipe YAML, or on the host:' : 'An operator can create one on the host:'}</p>
            <pre className="block">cortexctl model create -f recipes/gemma3-270m-cpu.yaml --start</pre>
          </Empty>
        ) : (
          <table className="t" aria-label="Models">
            <thead>
              <tr>
                <th>Name</th>
                <th>Served as</th>
                <th>Engine</th>
                <th>Desired</th>
                <th>State</th>
                <th>Replicas</th>
                <th>Since</th>
              </tr>
            </thead>
            <tbody>
              {(list.data ?? []).map((m) => (
                <tr key={m.name} data-model={m.name} aria-selected={m.name === selected}>
                  <td>
                    <button className="btn small ghost" onClick={() => setSelected(m.name)} aria-label={`Show ${m.name}`} style={{ color: 'var(--brand)', fontWeight: 600 }}>
                      {m.name}
                    </button>
                  </td>
                  <td className="mono">{m.served_name}</td>
                  <td>{m.engine}</td>
                  <td>{m.desired_state}</td>
                  <td>
                    <Badge state={m.state} />
                  </td>
                  <td>{m.replicas.length}</td>
                  <td className="muted">{when(m.state_changed_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {model && <ModelDetail model={model} writer={writer} onChange={list.reload} onDeleted={() => setSelected(null)} />}
      {creating && (
        <CreateModel
          onClose={() => setCreating(false)}
          onCreated={(name) => {
            setCreating(false);
            setSelected(name);
            list.reload();
          }}
        />
      )}
    </>
  );
}

function ModelDetail({ model, writer, onChange, onDeleted }: { model: ModelInfo; writer: boolean; onChange: () => void; onDeleted: () => void }) {
  const [tab, setTab] = useState<'overview' | 'logs' | 'validate'>('overview');
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const act = async (action: 'start' | 'stop' | 'restart' | 'delete') => {
    if (action === 'delete' && !window.confirm(`Delete the model ${model.name}? Its engine is stopped first.`)) return;
    setBusy(action);
    setError(null);
    try {
      if (action === 'delete') {
        await api(`/admin/models/${encodeURIComponent(model.name)}`, { method: 'DELETE' });
        onDeleted();
      } else {
        await api(`/admin/models/${encodeURIComponent(model.name)}/${action}`, { method: 'POST' });
      }
      onChange();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  const d = model.diagnosis;
  return (
    <div className="card" aria-label={`Model ${model.name}`}>
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <h2 style={{ margin: 0 }}>
          {model.name} <Badge state={model.state} />
        </h2>
        {writer && (
          <div className="actions">
            <button className="btn" disabled={!!busy || (model.desired_state === 'running' && model.state !== 'failed')} onClick={() => act('start')}>
              ▶ Start
            </button>
            <button className="btn" disabled={!!busy || model.desired_state === 'stopped'} onClick={() => act('stop')}>
              ■ Stop
            </button>
            <button className="btn" disabled={!!busy} onClick={() => act('restart')}>
              ↻ Restart
            </button>
            <button className="btn danger" disabled={!!busy} onClick={() => act('delete')}>
              Delete
            </button>
          </div>
        )}
      </div>
      <ErrorBox error={error} />
      {d && (
        <div className="alert error" role="alert" style={{ marginTop: 12 }}>
          <strong>Diagnosis{d.rule ? ` (${d.rule})` : ''}:</strong> {d.summary ?? 'the engine failed'}
          {d.fix && <span className="fix">Fix: {d.fix}</span>}
          {d.line && <code className="fix">{String(d.line)}</code>}
        </div>
      )}
      <div className="tabs" role="tablist" style={{ marginTop: 12 }}>
        {(['overview', 'logs', 'validate'] as const).map((t) => (
          <button key={t} role="tab" aria-selected={tab === t} onClick={() => setTab(t)}>
            {t === 'overview' ? 'Overview' : t === 'logs' ? 'Logs' : 'Validate'}
          </button>
        ))}
      </div>
      {tab === 'overview' && (
        <>
          <dl className="kv">
            <dt>Recipe</dt>
            <dd>
              <Link href={`/recipes?name=${encodeURIComponent(model.recipe)}`}>{model.recipe}</Link>
            </dd>
            <dt>Served name</dt>
            <dd className="mono">{model.served_name}</dd>
            <dt>Engine / runtime</dt>
            <dd>
              {model.engine} / {model.runtime ?? '—'}
            </dd>
            <dt>Desired state</dt>
            <dd>{model.desired_state}</dd>
            <dt>Reason</dt>
            <dd>{model.state_reason ?? '—'}</dd>
            <dt>Created</dt>
            <dd>{when(model.created_at)}</dd>
          </dl>
          <h3 style={{ fontSize: 14, marginTop: 16 }}>Replicas</h3>
          <table className="t">
            <thead>
              <tr>
                <th>#</th>
                <th>State</th>
                <th>Runtime</th>
                <th>Port</th>
                <th>PID</th>
                <th>Restarts</th>
                <th>Last exit</th>
              </tr>
            </thead>
            <tbody>
              {model.replicas.map((r) => (
                <tr key={r.replica_index}>
                  <td>{r.replica_index}</td>
                  <td>
                    <Badge state={r.state} />
                  </td>
                  <td>{r.runtime ?? '—'}</td>
                  <td>{r.port ?? '—'}</td>
                  <td>{r.pid ?? '—'}</td>
                  <td>{r.restart_count}</td>
                  <td>{r.last_exit_code ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {tab === 'logs' && <Logs name={model.name} />}
      {tab === 'validate' && <Validate name={model.name} />}
    </div>
  );
}

function Logs({ name }: { name: string }) {
  const logs = useLoad(() => api<{ logs: string; diagnosis: Record<string, string> | null }>(`/admin/models/${encodeURIComponent(name)}/logs?tail=300`), [name], 4000);
  return (
    <>
      <ErrorBox error={logs.error} />
      {logs.data?.diagnosis && (
        <div className="alert error">
          <strong>{logs.data.diagnosis.summary}</strong>
          {logs.data.diagnosis.fix && <span className="fix">Fix: {logs.data.diagnosis.fix}</span>}
        </div>
      )}
      <pre className="block" aria-label="Engine log" tabIndex={0}>
        {logs.data ? logs.data.logs || '(the engine has not written anything yet)' : 'Loading…'}
      </pre>
    </>
  );
}

function Validate({ name }: { name: string }) {
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      setReport(await api<Report>(`/admin/models/${encodeURIComponent(name)}/validate`, { method: 'POST' }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <p className="muted">The preflight every start runs: the memory the model needs from its own metadata, every check, and the exact command.</p>
      <button className="btn primary" onClick={run} disabled={busy}>
        {busy ? 'Validating…' : 'Run validation'}
      </button>
      <ErrorBox error={error} />
      {report && <ReportView report={report} />}
    </>
  );
}

function formYaml(f: { name: string; engine: string; path: string; served: string; context: string; gpus: string }): string {
  const q = (v: string) => JSON.stringify(v.trim()); // a JSON string is a valid YAML scalar
  const gpus = /^[\d,\s]+$/.test(f.gpus.trim()) ? `[${f.gpus.trim()}]` : q(f.gpus || 'none');
  return [
    'apiVersion: cortex/v1',
    'kind: Recipe',
    'metadata:',
    `  name: ${q(f.name)}`,
    'spec:',
    `  engine: ${q(f.engine)}`,
    `  served_name: ${q(f.served || f.name)}`,
    '  model:',
    `    path: ${q(f.path)}`,
    `  gpus: ${gpus}`,
    '  args:',
    `    context_length: ${Number(f.context) || 4096}`,
    '',
  ].join('\n');
}

function CreateModel({ onClose, onCreated }: { onClose: () => void; onCreated: (name: string) => void }) {
  const [mode, setMode] = useState<'yaml' | 'form' | 'recipe'>('yaml');
  const [form, setForm] = useState({ name: '', engine: 'llamacpp', path: '', served: '', context: '4096', gpus: 'none' });
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [k]: e.target.value }));
  const [yaml, setYaml] = useState(EXAMPLE);
  const [recipe, setRecipe] = useState('');
  const [name, setName] = useState('');
  const [start, setStart] = useState(true);
  const [errors, setErrors] = useState<LineError[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const recipes = useLoad(() => api<RecipeInfo[]>('/admin/recipes'), []);
  const submit = async () => {
    setBusy(true);
    setErrors([]);
    setError(null);
    try {
      const text = mode === 'form' ? formYaml(form) : yaml;
      if (mode === 'form') setYaml(text); // errors are shown on the YAML it produced
      const body = mode === 'recipe' ? { recipe, start, name: name || undefined } : { yaml: text, start, name: name || undefined };
      const created = await api<ModelInfo>('/admin/models', { method: 'POST', body });
      onCreated(created.name);
    } catch (e) {
      if (e instanceof ApiError && mode !== 'recipe' && e.status < 500 && /:\d+:/.test(e.message)) {
        setErrors(lineErrors(e.message));
        setMode('yaml');
      }
      else setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title="Create a model" onClose={onClose}>
      <div className="tabs" role="tablist">
        <button role="tab" aria-selected={mode === 'yaml'} onClick={() => setMode('yaml')}>
          From recipe YAML
        </button>
        <button role="tab" aria-selected={mode === 'form'} onClick={() => setMode('form')}>
          From a form
        </button>
        <button role="tab" aria-selected={mode === 'recipe'} onClick={() => setMode('recipe')}>
          From a registered recipe
        </button>
      </div>
      <ErrorBox error={error} />
      {mode === 'yaml' ? (
        <YamlEditor value={yaml} onChange={setYaml} errors={errors} />
      ) : mode === 'form' ? (
        <div>
          <div className="row">
            <label className="f">
              <span>Recipe name</span>
              <input type="text" value={form.name} onChange={set('name')} placeholder="my-model" />
            </label>
            <label className="f">
              <span>Engine</span>
              <select value={form.engine} onChange={set('engine')}>
                <option value="llamacpp">llama.cpp (GGUF)</option>
                <option value="vllm">vLLM (HF folder)</option>
              </select>
            </label>
          </div>
          <label className="f">
            <span>
              Model path <small>(a GGUF file or HF folder; relative = under the model store)</small>
            </span>
            <input type="text" value={form.path} onChange={set('path')} placeholder="gemma-3-270m-q4_k_m.gguf" />
          </label>
          <div className="row">
            <label className="f">
              <span>Served name</span>
              <input type="text" value={form.served} onChange={set('served')} placeholder="what clients call it" />
            </label>
            <label className="f">
              <span>Context length</span>
              <input type="number" min={256} value={form.context} onChange={set('context')} />
            </label>
            <label className="f">
              <span>GPUs</span>
              <input type="text" value={form.gpus} onChange={set('gpus')} placeholder="none, all, or 0,1" />
            </label>
          </div>
          <p className="muted">More options (arguments, request defaults, replicas) in the YAML tab; see the Guide&apos;s recipe format.</p>
        </div>
      ) : (
        <label className="f">
          <span>Recipe</span>
          <select value={recipe} onChange={(e) => setRecipe(e.target.value)}>
            <option value="">Choose…</option>
            {(recipes.data ?? []).map((r) => (
              <option key={r.name} value={r.name}>
                {r.name} ({r.engine}, serves {r.served_name})
              </option>
            ))}
          </select>
        </label>
      )}
      <div className="row" style={{ marginTop: 12 }}>
        <label className="f">
          <span>
            Model name <small>(default: the recipe&apos;s name)</small>
          </span>
          <input type="text" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label className="checks">
          <input type="checkbox" checked={start} onChange={(e) => setStart(e.target.checked)} /> Start it now
        </label>
      </div>
      <div className="actions">
        <button className="btn primary" onClick={submit} disabled={busy || (mode === 'recipe' && !recipe)}>
          {busy ? 'Creating…' : 'Create model'}
        </button>
        <button className="btn" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Modal>
  );
}
