/**
 * Where `concurrency` and `rateLimit` may stand (src/concurrency): on leaf
 * steps (a container's or a child workflow's slot would be held while its
 * own steps wait: refused rather than deadlocked), and on the workflow,
 * whose keys are read before any step ran (only `input` and `execution`). Pure.
 */
import { isContainer, type Definition } from '../../machines/definition.js';
import { walkSteps } from '../../machines/blocks.js';
import { rootsReadBy } from './resolve.js';
import type { Issue } from './references.js';

export function checkConcurrency(def: Definition): Issue[] {
  const issues: Issue[] = [];
  for (const { step, path } of walkSteps(def.steps)) {
    if (!isContainer(step) && step.type !== 'workflow') continue;
    if (step.concurrency) issues.push({ path: `${path}.concurrency`, message: `concurrency applies to steps that do work (not to a ${step.type} step): put it on the steps inside` });
    if (step.rateLimit) issues.push({ path: `${path}.rateLimit`, message: `rateLimit applies to steps that do work (not to a ${step.type} step): put it on the steps inside` });
  }
  const keys: [string, string][] = [...(def.concurrency ?? []).map((c, i): [string, string] => [`concurrency[${i}].key`, c.key]), ...(def.rateLimit ? [['rateLimit.key', def.rateLimit.key] as [string, string]] : [])];
  for (const [path, key] of keys) {
    let roots: Set<string>;
    try {
      roots = rootsReadBy(key);
    } catch (err) {
      issues.push({ path, message: (err as Error).message });
      continue;
    }
    const other = [...roots].find((r) => r !== 'input' && r !== 'execution');
    if (other) issues.push({ path, message: `a workflow's key is read before any step runs: it may use input and execution, not '${other}'` });
  }
  return issues;
}
