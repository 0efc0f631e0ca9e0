// Copy Swagger UI and ReDoc from node_modules into the export, so /docs and /redoc need no CDN.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(root, 'out', 'docs-assets');
mkdirSync(join(out, 'swagger-ui'), { recursive: true });
mkdirSync(join(out, 'redoc'), { recursive: true });
for (const f of ['swagger-ui-bundle.js', 'swagger-ui.css']) {
  cpSync(join(root, 'node_modules', 'swagger-ui-dist', f), join(out, 'swagger-ui', f));
}
// ReDoc's sidebar shows a logo from cdn.redoc.ly: point it at a local copy (the CSP would block it anyway)
const REDOC_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';
const redoc = readFileSync(join(root, 'node_modules', 'redoc', 'bundles', 'redoc.standalone.js'), 'utf8');
if (!redoc.includes(REDOC_LOGO)) console.warn('vendor-docs: the ReDoc logo URL moved; check for off-host requests');
writeFileSync(join(out, 'redoc', 'redoc.standalone.js'), redoc.split(REDOC_LOGO).join('/icon.svg'));
// an external init script: the CSP needs no inline script for /docs
writeFileSync(
  join(out, 'swagger-init.js'),
  // validatorUrl null: no badge image from validator.swagger.io
  "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null });\n",
);
console.log('vendored Swagger UI and ReDoc into out/docs-assets');
