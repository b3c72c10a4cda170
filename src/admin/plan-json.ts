import type { Plan } from '../reconcile/model.js';
import type { PlanJson } from './types.js';

/** The `plan --json` object of SPEC §5 (also `GET /_supervisor/api/plan`). */
export function planToJson(plan: Plan): PlanJson {
  return {
    changes: plan.changes.map((c) => ({
      app: c.app,
      action: c.action,
      detail: c.detail,
      ...(c.dueAt ? { dueAt: c.dueAt } : {}),
      ...(c.application ? { application: c.application } : {}),
    })),
    errors: plan.errors,
    ...(plan.guard ? { guard: plan.guard } : {}),
  };
}
