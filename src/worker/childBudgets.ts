/**
 * Token budgets of child executions. A child spends from what is left of its
 * parent's budget, and its usage is added to the parent's when it reports.
 * A map's items run at once, so each is given a part of what is left: the
 * parent holds that part back (recorded with the item's start, `launch[].maxTokens`)
 * until the item reports, when its real usage counts instead. So the parent's
 * usage plus what its running items hold never passes the budget; each item
 * keeps within its part as any execution keeps within its budget (an llm call's
 * completion is capped to what is left, only the prompt's estimate can be off).
 */
import type { Budget, MapStep } from '../../machines/definition.js';
import type { Usage } from '../../machines/events.js';
import type { MapProgress } from '../../machines/containers/map.js';

/** The budget of a `workflow` step's child: what is left of the parent's. */
export function childBudget(budget: Budget | undefined, usage: Usage): { budget?: Budget } {
  return budget ? { budget: { maxTokens: Math.max(1, budget.maxTokens - usage.totalTokens) } } : {};
}

/**
 * The tokens each of `n` map items starting now is given: an equal share of what is left among
 * the items that may still run at once, no more than is not held by the items running. An item
 * given nothing gets 0 (its child's budget is then 1 token, which refuses its first llm call).
 */
export function itemBudgets(budget: Budget, usage: Usage, p: MapProgress, step: MapStep, n: number): number[] {
  const left = Math.max(0, budget.maxTokens - usage.totalTokens);
  const sharers = Math.max(1, Math.min(step.maxConcurrency, p.count - p.settled));
  const share = Math.floor(left / sharers);
  let free = left - Object.values(p.held ?? {}).reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const given = Math.max(0, Math.min(share, free));
    free -= given;
    out.push(given);
  }
  return out;
}

/** The budget of a map item's child: the tokens it was given at its start. */
export const itemBudget = (maxTokens: number): Budget => ({ maxTokens: Math.max(1, maxTokens) });
