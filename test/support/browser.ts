/**
 * The console in a real browser: a harness's app served on an ephemeral localhost port, Debian's
 * Chromium driven by playwright-core (nothing downloads a browser), and what the browser tests
 * check on every page: no console error and no Content-Security-Policy violation, axe-core with no
 * serious or critical violation, no token or unmasked identifier in what was rendered, and
 * screenshots under test-results/console/ (git-ignored, kept as CI artefacts).
 *
 * The app is served as http://localhost:<port> (not 127.0.0.1): `localhost` is a secure context,
 * so the console's `__Host-` cookie is kept over plain http, and it is the same site as the
 * Temporal UI's origin (http://localhost:8233), whose credentialed codec calls carry that cookie.
 * The page's CSP is enforced in every context; only axe's own source is put into a page, through
 * the DevTools protocol (`page.evaluate`), which the page's CSP does not govern.
 */
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type Browser, type BrowserContext, type Page, type Response as PageResponse } from 'playwright-core';
import { expect } from 'vitest';

/** The repository's root (screenshots go under its test-results/). */
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'test-results', 'console');

/** Where Chromium is: PERSONA_CHROMIUM, else Debian's package (chromium, or the older chromium-browser). */
export function chromiumExecutable(): string {
  const candidates = [process.env.PERSONA_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
    (p): p is string => Boolean(p),
  );
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  throw new Error(
    `No Chromium found (looked at ${candidates.join(', ')}). The browser tests drive Debian's Chromium: ` +
      'install it with `sudo apt-get install -y chromium` (.ci/run does), or set PERSONA_CHROMIUM to its path.',
  );
}

/** Headless Chromium; without the sandbox only when running as root (a container), where it cannot start. */
export function launchChromium(): Promise<Browser> {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return chromium.launch({
    executablePath: chromiumExecutable(),
    headless: true,
    // /dev/shm is small in containers; Chromium falls back to /tmp instead of crashing a tab.
    args: ['--disable-dev-shm-usage', ...(asRoot ? ['--no-sandbox'] : [])],
  });
}

/** Serves an app (what `createApp` returns) on an ephemeral port, as http://localhost:<port>. */
export async function serveApp(app: { fetch: Parameters<typeof serve>[0]['fetch'] }): Promise<{
  baseUrl: string;
  port: number;
  close(): Promise<void>;
}> {
  const server: ServerType = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://localhost:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** What went wrong in a page that no test expects: console errors, uncaught exceptions, CSP violations. */
export interface PageWatch {
  readonly problems: string[];
  /** The HTML of every document the page was answered with (redirects have none), in order. */
  documents(): Promise<{ url: string; status: number; html: string }[]>;
  /** Fails the test, listing them, if anything went wrong. */
  expectNoProblems(): void;
}

const CSP_MESSAGE = /Content Security Policy|Content-Security-Policy|ERR_BLOCKED_BY_CSP/i;

/**
 * Watches a page from its first navigation on (call it before `goto`). A document's own status is
 * the test's to assert (a refused form answers 403 on purpose), so the browser's "Failed to load
 * resource" line for a document is not a problem (nor for the browser's own /favicon.ico guess);
 * for a script, a style sheet or a fetch, it is.
 */
export async function watchPage(page: Page): Promise<PageWatch> {
  const problems: string[] = [];
  const documentUrls = new Set<string>();
  const documents: Promise<{ url: string; status: number; html: string } | null>[] = [];

  await page.exposeBinding('__personaCspViolation', (_source, violation: Record<string, unknown>) => {
    problems.push(
      `CSP violation: ${String(violation.directive)} blocked ${String(violation.blocked)} ` +
        `on ${String(violation.page)} (${String(violation.sample)})`,
    );
  });
  // Page-side code as text: this program is typed without the DOM.
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) => window.__personaCspViolation?.({
      directive: e.violatedDirective, blocked: e.blockedURI, page: e.documentURI, sample: e.sample,
    }));`,
  });

  page.on('response', (response) => {
    const request = response.request();
    if (!request.isNavigationRequest() || response.frame() !== page.mainFrame()) return;
    documentUrls.add(response.url());
    if (response.status() >= 300 && response.status() < 400) return;
    documents.push(
      response.text().then(
        (html) => ({ url: response.url(), status: response.status(), html }),
        () => null,
      ),
    );
  });
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() !== 'error' && !CSP_MESSAGE.test(text)) return;
    const at = message.location().url;
    if (/^Failed to load resource/.test(text) && (documentUrls.has(at) || at === page.url())) return;
    // The browser's own guess at an icon, which no page asked for.
    if (/^Failed to load resource/.test(text) && new URL(at || 'about:blank').pathname === '/favicon.ico') return;
    problems.push(`console ${message.type()}: ${text}${at ? ` (${at})` : ''}`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  page.on('requestfailed', (request) => {
    const failure = request.failure()?.errorText ?? '';
    if (CSP_MESSAGE.test(failure)) problems.push(`blocked by CSP: ${request.url()}`);
  });

  return {
    problems,
    documents: async () =>
      (await Promise.all(documents)).filter((d): d is { url: string; status: number; html: string } => d !== null),
    expectNoProblems: () => expect(problems, problems.join('\n')).toEqual([]),
  };
}

/** A JWT (three base64url parts, the first a JSON header): no rendered page may hold one. */
const JWT = /eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}/;

/**
 * Fails if any document the page was served, or the page as it stands, holds a JWT or any of the
 * `forbidden` strings (unmasked identifiers, payment tokens).
 */
export async function expectNothingLeaked(page: Page, watch: PageWatch, forbidden: string[] = []): Promise<void> {
  const served = await watch.documents();
  expect(served.length, 'the documents the page was served were read').toBeGreaterThan(0);
  const pages = [...served, { url: `${page.url()} (as rendered)`, html: await page.content() }];
  const leaks = pages.flatMap(({ url, html }) => [
    ...(JWT.test(html) ? [`${url}: a JWT (${JWT.exec(html)?.[0].slice(0, 16)}…)`] : []),
    ...forbidden.filter((s) => s && html.includes(s)).map((s) => `${url}: ${s}`),
  ]);
  expect(leaks, leaks.join('\n')).toEqual([]);
}

/** One browser context (its own cookie jar, CSP enforced) with one watched page. */
export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  watch: PageWatch;
  close(): Promise<void>;
}

/** Chromium and the app it drives, served at `baseUrl`. */
export interface ConsoleBrowser {
  browser: Browser;
  baseUrl: string;
  port: number;
  open(): Promise<BrowserSession>;
  close(): Promise<void>;
}

export async function startConsoleBrowser(app: Parameters<typeof serveApp>[0]): Promise<ConsoleBrowser> {
  const served = await serveApp(app);
  let browser: Browser;
  try {
    browser = await launchChromium();
  } catch (err) {
    await served.close();
    throw err;
  }
  return {
    browser,
    baseUrl: served.baseUrl,
    port: served.port,
    open: async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const watch = await watchPage(page);
      return { context, page, watch, close: () => context.close() };
    },
    close: async () => {
      await browser.close();
      await served.close();
    },
  };
}

/**
 * Signs in through the real sign-in form (its CSRF nonce and all): the answer the browser ends on
 * after the redirects (a redirect to the landing page, or the sign-in page saying what was wrong).
 */
export async function signIn(page: Page, baseUrl: string, token: string): Promise<PageResponse> {
  const form = await page.goto(`${baseUrl}/console/sign-in`);
  expect(form?.status()).toBe(200);
  await page.locator('#token').fill(token);
  return landing(page, () => page.locator('form.sign-in button[type="submit"]').click());
}

/**
 * Does what submits a form or follows a link (`act`: a click, Enter) and waits for the document
 * the browser ends on after any redirects: its answer, once loaded.
 */
export async function landing(page: Page, act: () => Promise<void>): Promise<PageResponse> {
  const answered = page.waitForEvent(
    'response',
    (r) =>
      r.request().isNavigationRequest() && r.frame() === page.mainFrame() && (r.status() < 300 || r.status() >= 400),
  );
  // The answer is in before its document replaces the old one (even at the same URL, as a
  // confirmation posting to itself): wait for the main frame to commit the new document too.
  const committed = page.waitForEvent('framenavigated', (f) => f === page.mainFrame());
  await act();
  const response = await answered;
  await committed;
  await page.waitForLoadState('load');
  return response;
}

const require = createRequire(import.meta.url);
let axeSource: string | undefined;

interface AxeViolation {
  id: string;
  impact?: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

/**
 * Runs axe-core over the page as it stands and fails, printing them, on any violation whose
 * impact is serious or critical. axe's source goes in through the DevTools protocol, so the
 * page's CSP (no inline script, no eval) stays as it is for everything else.
 */
export async function expectAccessible(page: Page, what = page.url()): Promise<void> {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate("typeof window.axe === 'object'"))) await page.evaluate(axeSource);
  const violations = await page.evaluate<AxeViolation[]>(
    "axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations)",
  );
  const grave = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const described = grave.map(
    (v) =>
      `${v.impact}: ${v.id} — ${v.help} (${v.helpUrl})\n` +
      v.nodes.map((n) => `    at ${JSON.stringify(n.target)}: ${n.failureSummary ?? ''}`).join('\n'),
  );
  expect(described, `axe on ${what}:\n${described.join('\n')}`).toEqual([]);
}

/** A full-page PNG under test-results/console/<name>.png; its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
