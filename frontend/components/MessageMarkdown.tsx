'use client';

import { memo, type ReactNode } from 'react';
import Markdown from 'react-markdown';
import remarkGfm from 'remark-gfm';
import { CopyButton } from './ui';

function textOf(node: ReactNode): string {
  if (typeof node === 'string' || typeof node === 'number') return String(node);
  if (Array.isArray(node)) return node.map(textOf).join('');
  if (node && typeof node === 'object' && 'props' in node) return textOf((node as { props: { children?: ReactNode } }).props.children);
  return '';
}

/** A chat message as Markdown: code blocks get a copy button; links never navigate away silently. */
export const MessageMarkdown = memo(function MessageMarkdown({ text }: { text: string }) {
  return (
    <Markdown
      remarkPlugins={[remarkGfm]}
      components={{
        pre: ({ children }) => (
          <div style={{ position: 'relative' }}>
            <div style={{ position: 'absolute', right: 8, top: 8 }}>
              <CopyButton text={textOf(children)} label="Copy code" />
            </div>
            <pre>{children}</pre>
          </div>
        ),
        a: ({ href, children }) => (
          <a href={href} target="_blank" rel="noreferrer noopener">
            {children}
          </a>
        ),
        img: ({ alt }) => <span className="muted">[image: {alt}]</span>,
      }}
    >
      {text}
    </Markdown>
  );
});
