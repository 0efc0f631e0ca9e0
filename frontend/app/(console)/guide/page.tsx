/**
 * The Guide: the project's own Markdown, rendered at build time (a server component in a static
 * export), so it is in the console offline and always matches the version installed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Markdown from 'react-markdown';
import remarkGfm from 'remark-gfm';

const REPO = path.resolve(process.cwd(), '..');

interface Section {
  id: string;
  title: string;
  markdown: string | null;
}

function read(rel: string): string | null {
  const p = path.join(REPO, rel);
  return existsSync(p) ? readFileSync(p, 'utf8') : null;
}

interface Rule {
  rule: string;
  engines: string[];
  summary: string;
  fix: string;
}

function troubleshooting(): string | null {
  // written by install.sh from cortexctl.engines.diagnosis.RULES before the build
  const raw = read('frontend/content/diagnosis.json');
  if (!raw) return null;
  const rules = JSON.parse(raw) as Rule[];
  const seen = new Set<string>();
  const rows = rules
    .filter((r) => {
      const key = r.rule + r.summary;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .map((r) => `| \`${r.rule}\` | ${r.engines.join(', ')} | ${r.summary} | ${r.fix.replace(/\|/g, '\\|')} |`);
  return [
    '# Troubleshooting by diagnosis',
    '',
    'When an engine fails, CORTEX matches its log against these rules and shows the diagnosis and its fix on the model (Models → the model, and `cortexctl model logs NAME --diagnose`).',
    '',
    '| diagnosis | engines | what happened | fix |',
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
}

const LINKS: Record<string, string> = {
  'recipes/README.md': '#recipe-format',
  'bundles/FORMAT.md': '#bundles',
  'README.md': '#getting-started',
};

export default function GuidePage() {
  const sections: Section[] = [
    { id: 'getting-started', title: 'Getting started', markdown: read('README.md') },
    { id: 'first-model', title: 'Your first model', markdown: read('frontend/content/first-model.md') },
    { id: 'recipe-format', title: 'Recipe format', markdown: read('recipes/README.md') },
    { id: 'troubleshooting', title: 'Troubleshooting', markdown: troubleshooting() },
    { id: 'bundles', title: 'Offline bundles', markdown: read('bundles/FORMAT.md') },
  ].filter((s) => s.markdown);
  return (
    <>
      <div className="page-head">
        <div>
          <h1>Guide</h1>
          <p>The documentation of this CORTEX version, available offline.</p>
        </div>
      </div>
      <div className="grid" style={{ gridTemplateColumns: '200px 1fr', alignItems: 'start' }}>
        <nav className="card toc" aria-label="Guide sections" style={{ position: 'sticky', top: 16 }}>
          {sections.map((s) => (
            <a key={s.id} href={`#${s.id}`}>
              {s.title}
            </a>
          ))}
        </nav>
        <div>
          {sections.map((s) => (
            <section key={s.id} id={s.id} className="card prose" aria-label={s.title}>
              <Markdown
                remarkPlugins={[remarkGfm]}
                components={{
                  a: ({ href, children }) => {
                    const local = href ? LINKS[href.replace(/^\.\//, '')] : undefined;
                    if (local) return <a href={local}>{children}</a>;
                    if (href?.startsWith('#')) return <a href={href}>{children}</a>;
                    return <span title={href}>{children}</span>; // nothing leaves the host
                  },
                  img: ({ alt }) => <span className="muted">[{alt}]</span>,
                }}
              >
                {s.markdown!}
              </Markdown>
            </section>
          ))}
        </div>
      </div>
    </>
  );
}
