/**
 * The figures of every live replica in one answer: behind a load balancer each replica serves a
 * share of an app's traffic, so this replica's raw slots are merged with those every other live
 * replica answers (peer-requests.ts), slot by slot (serve/app-figures.ts `mergeRawFigures`), and
 * the rates and quantiles read off the sums. The answer names the replicas counted (`replicas`,
 * this one first) and those that did not answer (`unreachable`), whose traffic is missing.
 */
import {
  type AppFigureSeries,
  type FigureSummary,
  isRawAppFigures,
  isRawFigureSummary,
  mergeRawFigures,
  mergeRawSummaries,
} from '../serve/app-figures.js';
import type { PeerAnswers, PeerRequests } from './peer-requests.js';
import type { AppFigureSource } from './types.js';

/** Whose figures an answer holds. */
export interface FiguresOfReplicas {
  /** The replicas whose figures are counted, this one first. */
  readonly replicas: string[];
  /** Live replicas that did not answer in time (or not with figures that merge): their share is missing. */
  readonly unreachable: string[];
}

/** Where the figures come from: this replica's, and the other live replicas to ask (none: this one only). */
export interface FigureReplicas {
  readonly local: AppFigureSource;
  /** This replica's id. */
  readonly self: string;
  readonly peers: PeerRequests | undefined;
}

/** `app`'s figures on every live replica. */
export async function figuresOfAll(
  app: string,
  from: FigureReplicas,
): Promise<AppFigureSeries & FiguresOfReplicas> {
  const own = from.local.raw(app);
  const asked = await ask(from.peers, `_supervisor/api/apps/${encodeURIComponent(app)}/figures`, (body) =>
    isRawAppFigures(body, app, own.stepSeconds) ? body : undefined,
  );
  const merged = mergeRawFigures([own, ...asked.answers.map((a) => a.body)]);
  return { ...from.local.seriesOf(merged), ...whose(from.self, asked) };
}

/** The summary of `apps` on every live replica. */
export async function summaryOfAll(
  apps: readonly string[],
  from: FigureReplicas,
): Promise<FigureSummary & FiguresOfReplicas> {
  const own = from.local.rawSummary(apps);
  const query = new URLSearchParams({ apps: apps.join(',') });
  const asked = await ask(from.peers, `_supervisor/api/figures?${query}`, (body) =>
    isRawFigureSummary(body, apps, own.stepSeconds) ? body : undefined,
  );
  const merged = mergeRawSummaries([own, ...asked.answers.map((a) => a.body)]);
  return { ...from.local.summaryOf(merged), ...whose(from.self, asked) };
}

async function ask<T>(
  peers: PeerRequests | undefined,
  path: string,
  accept: (body: unknown) => T | undefined,
): Promise<PeerAnswers<T>> {
  return peers === undefined ? { answers: [], unreachable: [] } : peers.getAll(path, accept);
}

function whose(self: string, asked: PeerAnswers<unknown>): FiguresOfReplicas {
  return { replicas: [self, ...asked.answers.map((a) => a.replica)], unreachable: asked.unreachable };
}
