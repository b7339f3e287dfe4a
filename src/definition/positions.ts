/**
 * Where in a definition's text a problem's path (`steps[1].request.method`)
 * is: line and column (1-based) of that value, or of the nearest enclosing
 * one that exists (a missing field points at its step). JSON is read as YAML
 * here, which it is, so both get positions. Pure.
 */
import YAML, { LineCounter, isNode } from 'yaml';

export function pathSegments(path: string): (string | number)[] {
  if (path.startsWith('(')) return []; // (root), (document)
  const segments: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) segments.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return segments;
}

/** A locator for the paths of one text, or undefined when the text does not parse. */
export function positionsOf(text: string): ((path: string) => { line: number; column: number } | undefined) | undefined {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter });
  if (doc.errors.length) return undefined;
  return (path) => {
    const segments = pathSegments(path);
    for (let n = segments.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(segments.slice(0, n), true);
      if (isNode(node) && node.range) {
        const { line, col } = lineCounter.linePos(node.range[0]);
        return { line, column: col };
      }
    }
    return undefined;
  };
}
