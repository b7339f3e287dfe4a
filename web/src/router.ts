/**
 * Hash routes (#/executions/ID): the edge serves one page for /ui/, so a
 * deep link needs nothing from the server. Query-like filters live in the hash too.
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route { parts: string[]; params: URLSearchParams }

function parse(): Route {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const onChange = () => setRoute(parse());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function href(...parts: (string | number)[]): string {
  return `#/${parts.map((p) => encodeURIComponent(String(p))).join('/')}`;
}

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else location.hash = to.replace(/^#/, '');
  if (replace) dispatchEvent(new HashChangeEvent('hashchange'));
}
