// Copy Swagger UI and ReDoc from node_modules into the export, so /docs and /redoc need no CDN.
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(root, 'out', 'docs-assets');
mkdirSync(join(out, 'swagger-ui'), { recursive: true });
mkdirSync(join(out, 'redoc'), { recursive: true });
for (const f of ['swagger-ui-bundle.js', 'swagger-ui.css']) {
  cpSync(join(root, 'node_modules', 'swagger-ui-dist', f), join(out, 'swagger-ui', f));
}
cpSync(join(root, 'node_modules', 'redoc', 'bundles', 'redoc.standalone.js'), join(out, 'redoc', 'redoc.standalone.js'));
// an external init script: the CSP needs no inline script for /docs
writeFileSync(
  join(out, 'swagger-init.js'),
  "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });\n",
);
console.log('vendored Swagger UI and ReDoc into out/docs-assets');
