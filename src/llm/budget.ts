/** Token budgets per execution. Pure; the engine calls checkBudget before an llm step. */
import { BudgetExceededError } from './errors.js';

export interface TokenBudget {
  maxTokens: number;
}

/**
 * Throws BudgetExceededError when no tokens remain; otherwise returns how many
 * remain (Infinity without a budget), to pass on as `budgetRemaining`.
 */
export function checkBudget(budget: TokenBudget | undefined, usedTokens: number): number {
  if (!budget) return Infinity;
  const remaining = budget.maxTokens - usedTokens;
  if (remaining <= 0) throw new BudgetExceededError({ maxTokens: budget.maxTokens, usedTokens, remainingTokens: Math.max(0, remaining) });
  return remaining;
}
