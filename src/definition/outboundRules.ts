/**
 * Validation rules for what a definition sends out. Pure.
 *
 * - An http step's URL uses http or https. A URL that starts with a template
 *   is checked when it is resolved, at run time (the same policy refuses it).
 * - Credentials are never written into a definition: a definition is stored in
 *   plain text in ExecutionStarted (and the input with it), readable by anyone
 *   who may read the execution. An `Authorization` (or `Proxy-Authorization`)
 *   header may hold a scheme word and templates, e.g.
 *   `Bearer {{secrets.TOKEN}}`, but no literal credential and no `{{input…}}`.
 */
import type { Definition } from '../../machines/definition.js';
import { walkSteps } from '../../machines/blocks.js';
import { collectTemplates } from './templates.js';

interface Issue { path: string; message: string }

const TEMPLATE = /\{\{[^{}]*\}\}/g;
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization']);
/** A credential header's value: an optional scheme word (Bearer, Basic, token) and then templates only. */
const SCHEME_THEN_TEMPLATES = /^\s*([A-Za-z][A-Za-z0-9_-]*\s+)?(\0\s*)+$/;

export function checkOutbound(def: Definition): Issue[] {
  const issues: Issue[] = [];
  for (const { step, path: at } of walkSteps(def.steps)) {
    if (step.type !== 'http') continue;
    const { url, headers = {} } = step.request;
    const literalPrefix = url.split('{{')[0];
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(literalPrefix)?.[1];
    if (scheme !== undefined && !['http', 'https'].includes(scheme.toLowerCase())) {
      issues.push({ path: `${at}.request.url`, message: `scheme '${scheme}' is refused: http steps use http or https` });
    }
    // user:password@ written into the URL is a literal credential too (a template after the @ is fine).
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*@/.test(url.replace(TEMPLATE, '')) && /^[^/]*\/\/[^/?#{]*@/.test(url)) {
      issues.push({ path: `${at}.request.url`, message: `credentials written into the URL would be stored in plain text with the definition: use a header with {{secrets.NAME}}` });
    }
    for (const [name, value] of Object.entries(headers)) {
      if (!CREDENTIAL_HEADERS.has(name.toLowerCase())) continue;
      const path = `${at}.request.headers.${name}`;
      if (!SCHEME_THEN_TEMPLATES.test(value.replace(TEMPLATE, '\0'))) {
        issues.push({ path, message: `a literal credential would be stored in plain text with the definition: write it as a secret, e.g. 'Bearer {{secrets.TOKEN}}' (smartspec secrets set TOKEN)` });
        continue;
      }
      let refs: ReturnType<typeof collectTemplates> = [];
      try { refs = collectTemplates(value); } catch { continue; } // malformed templates are reported by checkTemplates
      if (refs.some((r) => r.path[0] === 'input')) {
        issues.push({ path, message: `a credential from the input would be stored in plain text with ExecutionStarted: use {{secrets.NAME}}` });
      }
    }
  }
  return issues;
}

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * `{{secrets.NAME}}` names one secret, and stands only where a step sends
 * something out (not in `when` or `model`, which are evaluated or recorded
 * outside the step's run).
 */
export function secretTemplateProblem(ref: { raw: string; path: string[] }, field: string): string | undefined {
  if (ref.path.length !== 2 || !SECRET_NAME.test(ref.path[1])) return `${ref.raw}: write {{secrets.NAME}} (letters, digits and _)`;
  if (field === 'when' || field === 'model') return `${ref.raw}: secrets may not stand in '${field}'`;
  return undefined;
}
