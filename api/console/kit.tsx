/**
 * What every console page and action shares: the page frame, rendering, who may see what, forms
 * that carry the session's CSRF token, and the confirm-then-act flow of every state-changing action.
 *
 * An action is a `ConsoleAction`: `POST /console/actions/<name>` first answers a confirmation page
 * (what will happen, in words), whose "Confirm" re-posts the same fields with `_confirmed=yes`;
 * only then does `run` call the same service the REST api calls (never a second path) and the
 * outcome page say what happened. An action a session's scopes do not allow is neither rendered
 * (`can`) nor accepted (`allowed` is checked again on the POST).
 */
import type { Context } from 'hono';
import type { Child } from 'hono/jsx';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { InvalidInputError } from '../../graph/errors';
import type { Principal, Scope } from '../auth';
import type { ApiDeps } from '../deps';
import { CSRF_FIELD, type ConsoleSession } from './session';

declare module 'hono' {
  interface ContextVariableMap {
    /** The signed-in console session (set by the console's session middleware). */
    consoleSession: ConsoleSession;
  }
}

/** Whether the principal holds any of the scopes (ops holds every one). */
export function can(principal: Principal, scopes: readonly Scope[]): boolean {
  return principal.scopes.has('ops') || scopes.some((s) => principal.scopes.has(s));
}

/** A customer's own token, with nothing that lets it see other customers. */
export function isCustomerSession(principal: Principal): boolean {
  return principal.scopes.has('self') && !can(principal, ['customers:read']);
}

export interface PageProps {
  title: string;
  session?: ConsoleSession | null;
  /** Extra scripts of this page (served from /console/static), after console.js. */
  scripts?: string[];
  children?: Child;
}

/** The frame of every page: skip link, navigation for what the session may reach, sign-out. */
export function Page({ title, session, scripts = [], children }: PageProps) {
  const principal = session?.principal;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title} · Persona console`}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/console/static/console.css" />
        <script src="/console/static/console.js" defer />
        {scripts.map((s) => (
          <script src={`/console/static/${s}`} defer />
        ))}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to the content
        </a>
        <header class="top">
          <nav aria-label="Console">
            <a class="brand" href="/console">
              Persona console
            </a>
            {principal && can(principal, ['customers:read']) ? <a href="/console/search">Find a customer</a> : null}
            {principal && principal.scopes.has('self') && principal.subject ? <a href="/console/me">My data</a> : null}
            {principal && can(principal, ['ops']) ? <a href="/console/operations">Operations</a> : null}
          </nav>
          {session ? (
            <form method="post" action="/console/sign-out" class="sign-out">
              <CsrfField session={session} />
              <span class="who">{principal?.subject ? `Signed in as ${principal.subject}` : 'Signed in'}</span>
              <button type="submit">Sign out</button>
            </form>
          ) : null}
        </header>
        <main id="main" tabindex={-1}>
          <h1>{title}</h1>
          {children}
        </main>
      </body>
    </html>
  );
}

/** Renders a page (with its doctype) as the answer. */
export async function render(c: Context, page: Child, status: ContentfulStatusCode = 200): Promise<Response> {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a JSX node renders to its HTML
  const body = `<!DOCTYPE html>${String(await Promise.resolve(page?.toString() ?? ''))}`;
  return c.html(body, status);
}

export function CsrfField({ session }: { session: ConsoleSession }) {
  return <input type="hidden" name={CSRF_FIELD} value={session.csrf} />;
}

/**
 * A button that starts a console action: a POST of `fields` (hidden) and whatever `children`
 * add (a reason, a choice), answered by the action's confirmation page.
 */
export function ActionForm(props: {
  session: ConsoleSession;
  action: string;
  fields?: Record<string, string>;
  label: string;
  /** Where the outcome page leads back to (a /console path); the current page by default. */
  back?: string;
  danger?: boolean;
  children?: Child;
}) {
  return (
    <form method="post" action={`/console/actions/${props.action}`} class="action">
      <CsrfField session={props.session} />
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      {props.back ? <input type="hidden" name="_back" value={props.back} /> : null}
      {props.children}
      <button type="submit" class={props.danger ? 'danger' : undefined}>
        {props.label}
      </button>
    </form>
  );
}

/** A form's fields (text only: the console takes no files). */
export type FormFields = Record<string, string>;

/** The posted form's text fields (Hono keeps the parsed body, so reading it twice is free). */
export async function formOf(c: Context): Promise<FormFields> {
  const body = await c.req.parseBody();
  return Object.fromEntries(
    Object.entries(body).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

/** What a confirmation or outcome page says. */
export interface ActionText {
  title: string;
  /** Sentences, one per line. */
  details: string[];
  /** A destructive or customer-visible step: the confirm button says so. */
  danger?: boolean;
}

export interface ConsoleAction {
  /** POST /console/actions/<name>. */
  name: string;
  /** The same rule as the REST route: only then is it shown, and only then accepted. */
  allowed: (principal: Principal) => boolean;
  /** What will happen, for the confirmation page; throws InvalidInputError naming a missing field. */
  confirm: (deps: ApiDeps, form: FormFields, session: ConsoleSession) => Promise<ActionText>;
  /** Does it, through the api's own service; what happened, for the outcome page. */
  run: (deps: ApiDeps, form: FormFields, session: ConsoleSession) => Promise<ActionText>;
}

/** A /console path to lead back to, or the fallback (never another site, never a scheme). */
export function safeBack(value: string | undefined, fallback: string): string {
  return value && /^\/console(\/[\w\-./?=&%]*)?$/.test(value) && !value.includes('//') ? value : fallback;
}

/** A required form field, or an InvalidInputError naming it. */
export function field(form: FormFields, name: string, what = 'required'): string {
  const value = form[name]?.trim();
  if (!value) throw new InvalidInputError(name, what);
  return value;
}

/** Formats a date-time for people (UTC, to the minute); '—' for none. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
