'use client';

import { useRef } from 'react';
import type { LineError } from '@/lib/yamlerrors';

/** A YAML textarea with line numbers; lines named by errors are marked and clickable. */
export function YamlEditor({
  value,
  onChange,
  errors = [],
  readOnly = false,
  label = 'Recipe YAML',
}: {
  value: string;
  onChange?: (v: string) => void;
  errors?: LineError[];
  readOnly?: boolean;
  label?: string;
}) {
  const ta = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLPreElement>(null);
  const lines = value.split('\n').length;
  const bad = new Set(errors.map((e) => e.line).filter((l): l is number => l !== null));
  const goTo = (line: number) => {
    const el = ta.current;
    if (!el) return;
    const offset = value.split('\n').slice(0, line - 1).join('\n').length + (line > 1 ? 1 : 0);
    el.focus();
    el.setSelectionRange(offset, offset + (value.split('\n')[line - 1]?.length ?? 0));
    el.scrollTop = Math.max(0, (line - 4) * 19);
  };
  return (
    <div>
      {errors.length > 0 && (
        <div className="alert error" role="alert" data-testid="yaml-errors">
          <strong>The recipe has {errors.length === 1 ? 'a problem' : `${errors.length} problems`}:</strong>
          <ul style={{ margin: '6px 0 0', paddingLeft: 18 }}>
            {errors.map((e, i) => (
              <li key={i}>
                {e.line !== null ? (
                  <button type="button" className="btn small ghost" onClick={() => goTo(e.line!)} style={{ padding: 0, color: 'inherit', textDecoration: 'underline' }}>
                    line {e.line}
                  </button>
                ) : null}{' '}
                <span className="mono">{e.text}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
      <div style={{ display: 'flex', border: '1px solid #d1d5db', borderRadius: 8, overflow: 'hidden', background: '#fff' }}>
        <pre
          ref={gutter}
          aria-hidden
          style={{ margin: 0, padding: '8px 8px', background: '#f8fafc', color: '#94a3b8', textAlign: 'right', userSelect: 'none', lineHeight: '19px', fontSize: 13, overflow: 'hidden', maxHeight: 420 }}
        >
          {Array.from({ length: lines }, (_, i) => (
            <div key={i} style={bad.has(i + 1) ? { background: '#fee2e2', color: '#b91c1c', fontWeight: 700 } : undefined} data-bad-line={bad.has(i + 1) ? i + 1 : undefined}>
              {i + 1}
            </div>
          ))}
        </pre>
        <textarea
          ref={ta}
          className="code"
          aria-label={label}
          spellCheck={false}
          readOnly={readOnly}
          value={value}
          onChange={(e) => onChange?.(e.target.value)}
          onScroll={(e) => {
            if (gutter.current) gutter.current.scrollTop = (e.target as HTMLTextAreaElement).scrollTop;
          }}
          onKeyDown={(e) => {
            if (e.key === 'Tab' && !readOnly && !e.shiftKey) {
              // two spaces, as YAML wants; Esc then Tab leaves the editor (keyboard users)
              e.preventDefault();
              const el = e.currentTarget;
              const s = el.selectionStart;
              const next = value.slice(0, s) + '  ' + value.slice(el.selectionEnd);
              onChange?.(next);
              requestAnimationFrame(() => el.setSelectionRange(s + 2, s + 2));
            }
            if (e.key === 'Escape') e.currentTarget.blur();
          }}
          style={{ border: 0, borderRadius: 0, lineHeight: '19px', minHeight: 320, maxHeight: 420, padding: 8, resize: 'vertical' }}
        />
      </div>
    </div>
  );
}
