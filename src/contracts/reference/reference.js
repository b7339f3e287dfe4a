// Renders /openapi.json as a reference page. Served by the edge itself with
// CSP default-src 'self': no inline script or style, and text goes in with
// textContent only (descriptions are data, never markup).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) if (c !== undefined && c !== null) node.append(c);
  return node;
}

const anchor = (method, path) => `op-${method}-${path.replace(/[^A-Za-z0-9]+/g, '-')}`;
const refName = (ref) => ref.split('/').pop();

function render(doc) {
  document.title = `${doc.info.title} ${doc.info.version} · API reference`;
  document.getElementById('title').textContent = `${doc.info.title} · API reference`;
  document.getElementById('summary').textContent = `OpenAPI ${doc.openapi} · version ${doc.info.version}. ${doc.info.description ?? ''}`;
  const byTag = new Map((doc.tags ?? []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? 'other';
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push({ method, path, op });
    }
  }
  const toc = document.getElementById('toc');
  const main = document.getElementById('content');
  main.replaceChildren();
  for (const { tag, ops } of byTag.values()) {
    if (ops.length === 0) continue;
    toc.append(el('h2', {}, tag.name), el('ul', {}, ...ops.map(({ method, path, op }) => el('li', {}, el('a', { href: `#${anchor(method, path)}` }, `${method.toUpperCase()} ${path}`)))));
    main.append(el('h2', { id: `tag-${tag.name}` }, tag.name), tag.description ? el('p', { class: 'muted' }, tag.description) : null);
    for (const o of ops) main.append(operation(o));
  }
  const schemas = Object.entries(doc.components?.schemas ?? {});
  if (schemas.length) {
    toc.append(el('h2', {}, 'schemas'), el('ul', {}, ...schemas.map(([name]) => el('li', {}, el('a', { href: `#schema-${name}` }, name)))));
    main.append(el('h2', { id: 'schemas' }, 'Schemas'));
    for (const [name, schema] of schemas) main.append(el('section', { class: 'operation', id: `schema-${name}` }, el('h3', {}, name), schemaBlock(schema)));
  }
}

function operation({ method, path, op }) {
  const section = el('section', { class: 'operation', id: anchor(method, path) },
    el('h3', {}, el('span', { class: `method method-${method}` }, method.toUpperCase()), path),
    op.summary ? el('p', {}, op.summary) : null,
    op.description ? el('p', { class: 'muted' }, op.description) : null);
  if (op.parameters?.length) {
    section.append(el('h4', {}, 'Parameters'), el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'in'), el('th', {}, 'schema'), el('th', {}, 'description'))),
      el('tbody', {}, ...op.parameters.map((p) => el('tr', {},
        el('td', {}, el('code', {}, p.name), p.required ? el('span', { class: 'required' }, ' *') : null),
        el('td', {}, p.in), el('td', {}, schemaBlock(p.schema ?? {})), el('td', {}, p.description ?? ''))))));
  }
  const body = op.requestBody?.content;
  if (body) for (const [type, media] of Object.entries(body)) section.append(el('h4', {}, `Request body (${type})${op.requestBody.required === false ? ', optional' : ''}`), schemaBlock(media.schema ?? {}));
  section.append(el('h4', {}, 'Responses'));
  for (const [status, res] of Object.entries(op.responses ?? {})) {
    section.append(el('p', {}, el('code', {}, status), ` ${res.description ?? ''}`));
    for (const [type, media] of Object.entries(res.content ?? {})) if (media.schema && Object.keys(media.schema).length) section.append(el('div', { class: 'muted' }, type), schemaBlock(media.schema));
  }
  return section;
}

function schemaBlock(schema) {
  return el('div', { class: 'schema' }, el('ul', {}, schemaNode(schema)));
}

/** One schema as a line (type, constraints) and its properties / items / variants below it. */
function schemaNode(schema, name, required) {
  const li = el('li');
  if (name !== undefined) li.append(el('code', {}, name), required ? el('span', { class: 'required' }, '*') : null, ': ');
  if (schema.$ref) {
    li.append(el('a', { href: `#schema-${refName(schema.$ref)}` }, refName(schema.$ref)));
    return li;
  }
  li.append(summaryOf(schema));
  if (schema.description) li.append(el('span', { class: 'muted' }, ` — ${schema.description}`));
  const children = [];
  const req = new Set(schema.required ?? []);
  for (const [key, sub] of Object.entries(schema.properties ?? {})) children.push(schemaNode(sub, key, req.has(key)));
  if (schema.items) children.push(schemaNode(schema.items, '[]'));
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') children.push(schemaNode(schema.additionalProperties, '{key}'));
  for (const kind of ['oneOf', 'anyOf', 'allOf']) (schema[kind] ?? []).forEach((s, i) => children.push(schemaNode(s, `${kind}[${i}]`)));
  if (children.length) li.append(el('ul', {}, ...children));
  return li;
}

function summaryOf(s) {
  const parts = [];
  const type = Array.isArray(s.type) ? s.type.join(' | ') : s.type;
  if (s.const !== undefined) parts.push(JSON.stringify(s.const));
  else if (s.enum) parts.push(s.enum.map((v) => JSON.stringify(v)).join(' | '));
  else parts.push(type ?? (s.oneOf || s.anyOf || s.allOf ? 'one of' : 'any'));
  if (s.format) parts.push(`(${s.format})`);
  for (const [k, label] of [['minimum', '≥'], ['maximum', '≤'], ['minLength', 'length ≥'], ['maxLength', 'length ≤'], ['minItems', 'items ≥'], ['maxItems', 'items ≤']]) {
    if (s[k] !== undefined && !(k === 'maximum' && s[k] === Number.MAX_SAFE_INTEGER)) parts.push(`${label} ${s[k]}`);
  }
  if (s.pattern) parts.push(`matching /${s.pattern}/`);
  if (s.default !== undefined) parts.push(`default ${JSON.stringify(s.default)}`);
  return parts.join(' ');
}

const doc = await fetch('/openapi.json').then((r) => {
  if (!r.ok) throw new Error(`/openapi.json answered ${r.status}`);
  return r.json();
}).catch((err) => {
  const status = document.getElementById('status');
  status.textContent = `Could not load the document: ${err.message}`;
  status.className = 'error';
  return undefined;
});

if (doc) render(doc);
