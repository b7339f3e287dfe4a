/**
 * The step-keyed maps of the machine's context (outputs, attempts, errors): a
 * persistent map, so that a transition that sets one step's entry shares
 * everything else with the snapshot before it. A plain object copied on every
 * transition made a run of N steps cost N²/2 copies, and a fold that keeps one
 * snapshot per checkpoint N²/2 entries of memory: a 10,000-step definition
 * exhausted the heap, again on every recovery.
 *
 * Small maps stay plain objects (the common case: a copy of a few keys is the
 * cheapest update there is); past SMALL entries a map becomes a hash trie of
 * plain arrays and objects: O(log n) per update, and still plain JSON, so
 * snapshots store and restore it as they are. Read it with these functions,
 * never by property access. Pure.
 */

/** A trie node: 32 slots, each empty, a child node (an array) or a bucket of entries (an object). */
type Slot<T> = null | Node<T> | Bucket<T>;
type Node<T> = Slot<T>[];
type Bucket<T> = Record<string, T>;
/** `#` is in no step id or signal name: a plain map never has this key. */
const TRIE = '#trie';
interface Trie<T> { [TRIE]: Node<T>; size: number }

export type StepMap<T> = Readonly<Record<string, T>> | Trie<T>;

/** Entries a plain map holds before it becomes a trie. */
const SMALL = 32;
/** Entries a bucket holds before it splits into a node (unless the hash bits are used up). */
const BUCKET = 8;
const BITS = 5;
const MAX_DEPTH = 6;

const EMPTY: StepMap<never> = Object.freeze({});
export const emptyStepMap = <T>(): StepMap<T> => EMPTY;

const isTrie = <T>(m: StepMap<T>): m is Trie<T> => Object.hasOwn(m, TRIE);
const isNode = <T>(s: Slot<T>): s is Node<T> => Array.isArray(s);

/** FNV-1a: a fast 32-bit string hash. */
function hash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
const slotOf = (h: number, depth: number) => (h >>> (depth * BITS)) & 31;

export function stepMapHas<T>(m: StepMap<T>, key: string): boolean {
  if (!isTrie(m)) return Object.hasOwn(m, key);
  const b = bucketFor(m[TRIE], key);
  return b !== undefined && Object.hasOwn(b, key);
}

export function stepMapGet<T>(m: StepMap<T>, key: string): T | undefined {
  if (!isTrie(m)) return Object.hasOwn(m, key) ? (m as Record<string, T>)[key] : undefined;
  const b = bucketFor(m[TRIE], key);
  return b !== undefined && Object.hasOwn(b, key) ? b[key] : undefined;
}

function bucketFor<T>(root: Node<T>, key: string): Bucket<T> | undefined {
  const h = hash(key);
  let node = root;
  for (let depth = 0; ; depth++) {
    const s = node[slotOf(h, depth)];
    if (s === null) return undefined;
    if (!isNode(s)) return s as Bucket<T>;
    node = s;
  }
}

/** A map with `key` set to `value`; `m` is left as it was. */
export function stepMapSet<T>(m: StepMap<T>, key: string, value: T): StepMap<T> {
  if (isTrie(m)) {
    const had = stepMapHas(m, key);
    return { [TRIE]: setIn(m[TRIE], key, value, hash(key), 0), size: had ? m.size : m.size + 1 };
  }
  // Not `{ ...m, [key]: value }`: V8 takes a slow path for a key added after a spread.
  const copy = Object.assign({}, m) as Record<string, T>;
  copy[key] = value;
  if (Object.keys(copy).length <= SMALL) return copy;
  let trie: StepMap<T> = { [TRIE]: emptyNode<T>(), size: 0 };
  for (const k of Object.keys(copy)) trie = stepMapSet(trie, k, copy[k]);
  return trie;
}

const emptyNode = <T>(): Node<T> => new Array<Slot<T>>(1 << BITS).fill(null);

function setIn<T>(node: Node<T>, key: string, value: T, h: number, depth: number): Node<T> {
  const i = slotOf(h, depth);
  const slots = node.slice();
  const s = slots[i];
  if (s === null) {
    slots[i] = { [key]: value } as Bucket<T>;
  } else if (isNode(s)) {
    slots[i] = setIn(s, key, value, h, depth + 1);
  } else {
    const bucket = s as Bucket<T>;
    if (Object.hasOwn(bucket, key) || Object.keys(bucket).length < BUCKET || depth + 1 >= MAX_DEPTH) {
      const copy = Object.assign({}, bucket);
      copy[key] = value;
      slots[i] = copy;
    } else {
      // Full: split the bucket one level down.
      let child = emptyNode<T>();
      for (const k of Object.keys(bucket)) child = setIn(child, k, bucket[k], hash(k), depth + 1);
      slots[i] = setIn(child, key, value, h, depth + 1);
    }
  }
  return slots;
}

/** A map without `key`. */
export function stepMapDelete<T>(m: StepMap<T>, key: string): StepMap<T> {
  if (!stepMapHas(m, key)) return m;
  const rest: Record<string, T> = {};
  let out: StepMap<T> = EMPTY;
  for (const [k, v] of stepMapEntries(m)) {
    if (k === key) continue;
    if (isTrie(m)) out = stepMapSet(out, k, v);
    else rest[k] = v;
  }
  return isTrie(m) ? out : rest;
}

export function stepMapEntries<T>(m: StepMap<T>): [string, T][] {
  if (!isTrie(m)) return Object.entries(m);
  const out: [string, T][] = [];
  const walk = (node: Node<T>) => {
    for (const s of node) {
      if (s === null) continue;
      if (isNode(s)) walk(s);
      else for (const k of Object.keys(s)) out.push([k, (s as Bucket<T>)[k]]);
    }
  };
  walk(m[TRIE]);
  return out;
}

export function stepMapSize<T>(m: StepMap<T>): number {
  return isTrie(m) ? m.size : Object.keys(m).length;
}

/** A plain object with the same entries (for printing and responses). */
export function stepMapToObject<T>(m: StepMap<T>): Record<string, T> {
  return isTrie(m) ? Object.fromEntries(stepMapEntries(m)) : { ...m };
}

/** The map of the given entries. */
export function stepMapFrom<T>(entries: Iterable<[string, T]>): StepMap<T> {
  let m: StepMap<T> = EMPTY;
  for (const [k, v] of entries) m = stepMapSet(m, k, v);
  return m;
}
