/**
 * A plan made offline (`plan --state FILE`) never guesses silently: each step of an app whose
 * observation the export could not have made says so in its detail (ActualApp.unobserved).
 */
import type { Actual, Plan } from './model.js';

/** The plan with the note of each such app appended to its steps' details (the plan itself as is). */
export function noteUnobserved(plan: Plan, actual: Actual): Plan {
  const notes = new Map<string, string>();
  for (const [name, app] of actual.apps) if (app.unobserved !== undefined) notes.set(name, app.unobserved);
  if (notes.size === 0) return plan;
  return {
    ...plan,
    changes: plan.changes.map((step) => {
      const note = notes.get(step.app);
      return note === undefined ? step : { ...step, detail: `${step.detail} (${note})` };
    }),
  };
}
