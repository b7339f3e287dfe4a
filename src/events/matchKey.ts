/**
 * The shape most wait matches have, `event.<path> = <expression of the wait's
 * own values>` (e.g. `event.orderId = steps.order.output.orderId`): found
 * here so that the dispatcher can compute the right-hand side once per wait
 * and, for each event, skip at once the waits whose value differs, instead of
 * evaluating every match against every event (1,000 waits on one subject:
 * a million evaluations for 1,000 events). Only a pre-filter: a wait it lets
 * through is still decided by its whole expression. Pure.
 */
import jsonata from 'jsonata';

export interface EqualityMatch {
  /** The names after `event`: `['orderId']`. */
  eventPath: string[];
  /** The other side, as a `{% … %}` expression that reads no event. */
  other: string;
}

type Node = { type?: string; value?: unknown; position?: number; steps?: Node[]; lhs?: Node; rhs?: Node; [k: string]: unknown };

/** What an event-side value must not be read from on the other side. */
const EVENT_ROOTS = new Set(['event', 'subject', 'headers']);

/** `event.a.b` as `['a', 'b']`: a path of plain names (no filters, no stages), or undefined. */
function eventPathOf(node: Node | undefined): string[] | undefined {
  if (node?.type !== 'path' || !node.steps || node.steps.length < 2) return undefined;
  const plain = node.steps.every((s) => s.type === 'name' && typeof s.value === 'string' && Object.keys(s).every((k) => k === 'type' || k === 'value' || k === 'position'));
  if (!plain || node.steps[0].value !== 'event') return undefined;
  return node.steps.slice(1).map((s) => s.value as string);
}

/** Whether an expression could read the event: a name `event`/`subject`/`headers` anywhere, or the context itself (`$`, `$$`). */
function readsEvent(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(readsEvent);
  if (!node || typeof node !== 'object') return false;
  const n = node as Node;
  if (n.type === 'name' && EVENT_ROOTS.has(n.value as string)) return true;
  if (n.type === 'variable' && (n.value === '' || n.value === '$')) return true;
  return Object.values(n).some(readsEvent);
}

const withoutPositions = (node: unknown): string => JSON.stringify(node, (k, v) => (k === 'position' ? undefined : v));

/** The equality a match expression body is, or undefined when it is anything else. */
export function equalityOf(body: string): EqualityMatch | undefined {
  let ast: Node;
  try {
    ast = jsonata(body).ast() as Node;
  } catch {
    return undefined;
  }
  if (ast.type !== 'binary' || ast.value !== '=' || typeof ast.position !== 'number') return undefined;
  for (const [eventSide, otherSide] of [[ast.lhs, ast.rhs], [ast.rhs, ast.lhs]] as const) {
    const eventPath = eventPathOf(eventSide);
    if (!eventPath || readsEvent(otherSide)) continue;
    // The other side's text: the operator's position splits the body; parsed again, it must be the same tree.
    const text = (otherSide === ast.rhs ? body.slice(ast.position) : body.slice(0, ast.position - 1)).trim();
    try {
      if (withoutPositions(jsonata(text).ast()) !== withoutPositions(otherSide)) return undefined;
    } catch {
      return undefined;
    }
    return { eventPath, other: `{% ${text} %}` };
  }
  return undefined;
}

/** A comparable key of a JSON primitive (strings and numbers never collide); undefined for anything else. */
export function primitiveKey(value: unknown): string | undefined {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? JSON.stringify(value) : undefined;
}

/** The value at `path` inside a payload of plain objects, as a primitive key; undefined when it is not one. */
export function keyAt(payload: unknown, path: string[]): string | undefined {
  let v = payload;
  for (const name of path) {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[name];
  }
  return v === undefined ? undefined : primitiveKey(v);
}
