/**
 * The API reference at /docs: Swagger UI served from the installed package (swagger-ui-dist,
 * pinned), never from a CDN — the api's origin is the console's, and no third party's code may
 * run on it. Under a Content-Security-Policy: scripts and styles from this origin only (the UI
 * sets inline style attributes, so styles also allow 'unsafe-inline'; no inline script), calls to
 * this origin only (it reads /openapi.json, and "Try it out" calls the api), no framing.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Hono } from 'hono';
import { pageHeaders } from './guards';

export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const require = createRequire(import.meta.url);

/** The page: the package's style sheet and bundle, and a start script of our own (no inline script). */
const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Persona API</title>
    <link rel="stylesheet" href="/docs/static/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/static/swagger-ui-bundle.js"></script>
    <script src="/docs/static/start.js"></script>
  </body>
</html>
`;

/**
 * Starts the UI on the api's own description. No validator badge: Swagger UI would send the
 * description's address to validator.swagger.io from any host but localhost.
 */
const START =
  "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, " +
  'validatorUrl: null });\n';

/** The files under /docs/static: read once (about 1.5 MB), served from memory. */
function staticFiles(): Map<string, { body: string; type: string }> {
  const dist = (name: string) => readFileSync(require.resolve(`swagger-ui-dist/${name}`), 'utf8');
  return new Map([
    ['swagger-ui.css', { body: dist('swagger-ui.css'), type: 'text/css; charset=utf-8' }],
    ['swagger-ui-bundle.js', { body: dist('swagger-ui-bundle.js'), type: 'text/javascript; charset=utf-8' }],
    ['start.js', { body: START, type: 'text/javascript; charset=utf-8' }],
  ]);
}

export function docsRoutes(): Hono {
  const app = new Hono();
  let files: ReturnType<typeof staticFiles> | undefined;
  app.use('/docs', pageHeaders(DOCS_CSP));
  app.use('/docs/*', pageHeaders(DOCS_CSP));
  app.get('/docs', (c) => c.html(PAGE));
  app.get('/docs/static/:name', (c) => {
    files ??= staticFiles();
    const file = files.get(c.req.param('name'));
    if (!file) return c.notFound();
    return c.body(file.body, 200, { 'content-type': file.type });
  });
  return app;
}
