'use client';

import { useEffect, useState } from 'react';
import { api, ApiError, can, canOperate } from '@/lib/api';
import type { RecipeInfo } from '@/lib/types';
import { lineErrors, type LineError } from '@/lib/yamlerrors';
import { useAuth } from '@/components/auth';
import { Empty, ErrorBox, PageHead, download, useLoad, when } from '@/components/ui';
import { YamlEditor } from '@/components/YamlEditor';

interface RecipeDetail extends RecipeInfo {
  description: string;
  yaml: string;
  problems: string[];
}

export default function RecipesPage() {
  const { me } = useAuth();
  const writer = canOperate(me) && can(me, 'models:write');
  const list = useLoad(() => api<RecipeInfo[]>('/admin/recipes'), []);
  const [selected, setSelected] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  useEffect(() => {
    const q = new URLSearchParams(window.location.search).get('name');
    if (q) setSelected(q);
  }, []);
  return (
    <>
      <PageHead title="Recipes" sub="YAML descriptions of what a model runs: engine, weights, served name, arguments">
        {writer && (
          <button className="btn primary" onClick={() => { setCreating(true); setSelected(null); }}>
            + New recipe
          </button>
        )}
      </PageHead>
      <ErrorBox error={list.error} />
      <div className="grid two" style={{ alignItems: 'start' }}>
        <div className="card">
          {list.data && list.data.length === 0 ? (
            <Empty title="No recipes registered">
              <p>Register the shipped ones on the host:</p>
              <pre className="block">cortexctl recipe apply -f recipes/gemma3-270m-cpu.yaml</pre>
            </Empty>
          ) : (
            <table className="t" aria-label="Recipes">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Engine</th>
                  <th>Serves</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {(list.data ?? []).map((r) => (
                  <tr key={r.name} aria-selected={r.name === selected}>
                    <td>
                      <button className="btn small ghost" style={{ color: 'var(--brand)', fontWeight: 600 }} onClick={() => { setSelected(r.name); setCreating(false); }}>
                        {r.name}
                      </button>
                    </td>
                    <td>{r.engine}</td>
                    <td className="mono">{r.served_name}</td>
                    <td className="muted">{when(r.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        {selected && <RecipeView name={selected} writer={writer} onSaved={list.reload} />}
        {creating && <NewRecipe onSaved={(n) => { setCreating(false); setSelected(n); list.reload(); }} />}
      </div>
    </>
  );
}

function RecipeView({ name, writer, onSaved }: { name: string; writer: boolean; onSaved: () => void }) {
  const detail = useLoad(() => api<RecipeDetail>(`/admin/recipes/${encodeURIComponent(name)}`), [name]);
  const [text, setText] = useState<string | null>(null);
  const [errors, setErrors] = useState<LineError[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => setText(null), [name]);
  const value = text ?? detail.data?.yaml ?? '';
  const save = async () => {
    setErrors([]);
    setError(null);
    setSaved(false);
    try {
      await api(`/admin/recipes/${encodeURIComponent(name)}`, { method: 'PUT', body: { yaml: value, source: detail.data?.source ?? undefined } });
      setSaved(true);
      detail.reload();
      onSaved();
    } catch (e) {
      if (e instanceof ApiError && e.status < 500) setErrors(lineErrors(e.message));
      else setError(e);
    }
  };
  const exportYaml = async () => {
    const body = await api<string>(`/admin/recipes/${encodeURIComponent(name)}/yaml`, { text: true });
    download(`${name}.yaml`, body, 'application/yaml');
  };
  return (
    <div className="card" aria-label={`Recipe ${name}`}>
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <h2 style={{ margin: 0 }}>{name}</h2>
        <div className="actions">
          <button className="btn" onClick={exportYaml}>
            Export YAML
          </button>
          {writer && (
            <button className="btn primary" onClick={save} disabled={text === null}>
              Save
            </button>
          )}
        </div>
      </div>
      <ErrorBox error={detail.error || error} />
      {detail.data?.description && <p className="muted">{detail.data.description}</p>}
      {detail.data && detail.data.problems.length > 0 && (
        <div className="alert error">
          This recipe no longer validates: {detail.data.problems.join(' ')}
        </div>
      )}
      {saved && <div className="alert ok">Saved. Models using it pick it up on their next start.</div>}
      <YamlEditor value={value} onChange={writer ? setText : undefined} readOnly={!writer} errors={errors} />
      {detail.data?.source && <p className="muted">Applied from {detail.data.source}</p>}
    </div>
  );
}

function NewRecipe({ onSaved }: { onSaved: (name: string) => void }) {
  const [text, setText] = useState('apiVersion: cortex/v1\nkind: Recipe\nmetadata:\n  name: \nspec:\n  engine: llamacpp\n  model:\n    path: \n  served_name: \n');
  const [errors, setErrors] = useState<LineError[]>([]);
  const [error, setError] = useState<unknown>(null);
  const save = async () => {
    setErrors([]);
    setError(null);
    try {
      const r = await api<RecipeDetail>('/admin/recipes', { method: 'POST', body: { yaml: text } });
      onSaved(r.name);
    } catch (e) {
      if (e instanceof ApiError && e.status < 500) setErrors(lineErrors(e.message));
      else setError(e);
    }
  };
  return (
    <div className="card">
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <h2 style={{ margin: 0 }}>New recipe</h2>
        <button className="btn primary" onClick={save}>
          Register
        </button>
      </div>
      <ErrorBox error={error} />
      <p className="muted">The format is in the Guide (Recipe format). Errors point at the line.</p>
      <YamlEditor value={text} onChange={setText} errors={errors} />
    </div>
  );
}
