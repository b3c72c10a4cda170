/**
 * Live figures per app over the last hour, for the admin UI's charts and `/_supervisor/metrics`:
 * requests per second, p50 / p95 latency, the share of 5xx answers, open connections (requests
 * in flight and upgraded sockets) and, for isolated apps, memory.
 *
 * Each app with traffic has one ring of fixed time slots (default 60 slots of 1 minute) in a
 * single typed array: per slot a request count, a 5xx count, the peak of open connections and
 * a small latency histogram. Latency quantiles are estimated from the histogram's bucket bounds
 * (see {@link LATENCY_BOUNDS_MS}).
 *
 * Bounded at 10,000 apps: a ring is allocated on an app's first request (or memory sample) and
 * freed by `sweep()` once a whole window has passed with nothing open and nothing recorded; past
 * `maxApps` rings, apps that have none are not recorded (logged once). Worst case, every one of
 * the `maxApps` apps busy within the hour and reporting memory: 4,800 bytes of typed arrays per
 * app with the defaults (`bytesPerApp()` + 240 for memory), about 5.3 KB with the objects
 * around them, so ≈ 51 MiB at 10,000 apps (measured by bench/figures.ts). Apps without traffic
 * in the hour cost nothing.
 *
 * Behind a load balancer each replica sees a share of the traffic, so the admin API answers the
 * figures of every live replica: each answers the others its raw slots (`raw`: counts, 5xx,
 * histogram bucket counts, open-connection peaks, memory), `mergeRawFigures` adds them up slot
 * by slot, and `seriesOf` reads rates and quantiles off the sums (never averages of quantiles).
 *
 * The gateway calls `opened` / `answered` / `released` on its hot path: one Map lookup per
 * request (in `opened`, which hands back the app's ring as the token), no allocation, no clock
 * reading once `start()`ed, a few typed-array writes (≈ 20-50 ns a request in bench/figures.ts).
 */
import type { Logger } from 'pino';
import type { CurrentAppFigures, LiveAppFigures } from '../admin/metrics.js';
import type { TrafficObserver } from '../gateway/types.js';

/**
 * Upper bounds (ms) of the latency buckets; one more bucket holds everything slower. A quantile
 * is interpolated linearly inside the bucket that holds it, so the estimate lies in the same
 * bucket as the true value: off by at most that bucket's width (the bounds step ×2 to ×2.5, so
 * within a factor of 2.5 of the truth at worst, usually much closer); past 10 s it reads 10 s.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000,
];

const BUCKETS = LATENCY_BOUNDS_MS.length + 1;
// A slot's fields in the ring, as offsets from its start.
const COUNT = 0;
const ERRORS = 1;
const PEAK_OPEN = 2;
const HISTOGRAM = 3;
const FIELDS = HISTOGRAM + BUCKETS;

/** One point of an app's figures: the slot that starts at `at`. */
export interface FigurePoint {
  /** Start of the slot (ISO time). */
  readonly at: string;
  /** Requests answered per second (the current slot: over its part gone by). */
  readonly rps: number;
  /** Estimated latency quantiles in ms; null in a slot without requests. */
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  /** Share of the slot's requests answered 5xx, 0 to 1. */
  readonly errorRate: number;
  /** The most requests in flight plus upgraded sockets open at once during the slot. */
  readonly openConnections: number;
  /** Isolated apps: the most memory the app reported in the slot (MiB; null when none came). */
  readonly memoryMb?: number | null;
}

/** `GET /_supervisor/api/apps/<name>/figures`. */
export interface AppFigureSeries {
  readonly app: string;
  readonly stepSeconds: number;
  /** Oldest first; the last one is the slot under way. */
  readonly points: FigurePoint[];
}

/** `GET /_supervisor/api/figures?apps=…`: three figures per app, for small charts in a list. */
export interface FigureSummary {
  readonly stepSeconds: number;
  readonly apps: Record<string, { rps: number[]; p95Ms: (number | null)[]; errorRate: number[] }>;
}

/**
 * One slot of one app as one replica recorded it: what adds up exactly across replicas (counts
 * and histogram bucket counts), where quantiles and averages would not.
 */
export interface RawSlot {
  /** Start of the slot, ms since the epoch (a multiple of the step: equal on every replica). */
  readonly at: number;
  /** Requests answered in the slot. */
  readonly count: number;
  /** Of them, answered 5xx. */
  readonly errors: number;
  /** The most requests in flight plus upgraded sockets open at once during the slot. */
  readonly open: number;
  /** Requests per latency bucket: one per LATENCY_BOUNDS_MS bound, then one for slower. */
  readonly histogram: readonly number[];
  /** The most memory reported in the slot (MiB), null when none came; only for apps that report it. */
  readonly memoryMb?: number | null;
}

/** A RawSlot while it is filled in. */
type MutableSlot = { -readonly [K in keyof RawSlot]: RawSlot[K] };

/**
 * An app's raw slots over the window: what a replica answers another one that merges the figures
 * of every replica (`mergeRawFigures`), and what `seriesOf` turns into points.
 */
export interface RawAppFigures {
  readonly app: string;
  readonly stepSeconds: number;
  /** Whether the app reports memory (an isolated app): its points carry `memoryMb`. */
  readonly memory: boolean;
  /** The slots with anything in them, oldest first; a slot not listed had nothing. */
  readonly slots: readonly RawSlot[];
}

/** The raw form of `GET /_supervisor/api/figures?apps=…`. */
export interface RawFigureSummary {
  readonly stepSeconds: number;
  readonly apps: Readonly<Record<string, RawAppFigures>>;
}

export interface AppFiguresOptions {
  /** Length of a slot in seconds. @default 60 */
  readonly stepSeconds?: number;
  /** Slots kept per app (the window is `stepSeconds × slots`). @default 60 */
  readonly slots?: number;
  /** Most apps with a ring at once; apps beyond are not recorded. @default 10000 */
  readonly maxApps?: number;
  /** The clock, in ms since the epoch. @default Date.now */
  readonly now?: () => number;
  /** Where reaching `maxApps` is reported (once). */
  readonly log?: Pick<Logger, 'warn'>;
}

/** One app's ring; also the token the gateway holds while a request or socket is open. */
class AppRing {
  readonly app: string;
  readonly data: Uint32Array;
  /** Per slot, NaN where no sample came; allocated on the app's first memory sample. */
  memory: Float32Array | undefined = undefined;
  /** Requests in flight plus upgraded sockets open now. */
  open = 0;
  /** The newest slot number written; the ring holds slots `last - slots + 1 … last`. */
  last: number;
  /** The latest memory sample (MiB) and the slot it came in. */
  memoryMb: number | undefined = undefined;
  memoryAt = 0;

  constructor(app: string, slots: number, slot: number) {
    this.app = app;
    this.data = new Uint32Array(slots * FIELDS);
    this.last = slot;
  }
}

export class AppFigures implements TrafficObserver<AppRing>, LiveAppFigures {
  readonly #stepMs: number;
  readonly #slots: number;
  readonly #maxApps: number;
  readonly #now: () => number;
  readonly #log: Pick<Logger, 'warn'> | undefined;
  readonly #rings = new Map<string, AppRing>();
  /** The current slot while `start()`ed (a timer moves it on); undefined: read the clock each time. */
  #current: number | undefined = undefined;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #warned = false;
  #refused = 0;

  constructor(options: AppFiguresOptions = {}) {
    const stepSeconds = options.stepSeconds ?? 60;
    const slots = options.slots ?? 60;
    if (!(stepSeconds > 0) || !Number.isInteger(slots) || slots < 2) {
      throw new RangeError(
        `figures need stepSeconds > 0 and at least 2 slots (got ${stepSeconds}, ${slots})`,
      );
    }
    this.#stepMs = stepSeconds * 1000;
    this.#slots = slots;
    this.#maxApps = options.maxApps ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.#log = options.log;
  }

  get stepSeconds(): number {
    return this.#stepMs / 1000;
  }

  /** Apps with a ring now. */
  get size(): number {
    return this.#rings.size;
  }

  /** Requests and sockets not recorded because `maxApps` rings were in use. */
  get refused(): number {
    return this.#refused;
  }

  /** Bytes of one app's ring (its typed array; the memory samples, when it has them, add 4 per slot). */
  bytesPerApp(): number {
    return this.#slots * FIELDS * Uint32Array.BYTES_PER_ELEMENT;
  }

  /** A request or an upgraded socket to `app` opened: its ring (the token for `answered`/`released`). */
  opened(app: string): AppRing | undefined {
    const ring = this.#rings.get(app) ?? this.#add(app);
    if (ring === undefined) return undefined;
    const slot = this.#slot();
    if (slot !== ring.last) this.#roll(ring, slot);
    const at = this.#offset(ring.last) + PEAK_OPEN;
    ring.open++;
    if (ring.open > ring.data[at]!) ring.data[at] = ring.open;
    return ring;
  }

  /** The request `opened` returned `ring` for was answered with `status` after `ms`. */
  answered(ring: AppRing, status: number, ms: number): void {
    const slot = this.#slot();
    if (slot !== ring.last) this.#roll(ring, slot);
    const data = ring.data;
    const base = this.#offset(ring.last);
    data[base + COUNT]!++;
    if (status >= 500 && status <= 599) data[base + ERRORS]!++;
    let b = 0;
    while (b < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[b]!) b++;
    data[base + HISTOGRAM + b]!++;
    if (ring.open > 0) ring.open--;
  }

  /** The upgraded socket `opened` returned `ring` for closed. */
  released(ring: AppRing): void {
    const slot = this.#slot();
    if (slot !== ring.last) this.#roll(ring, slot);
    if (ring.open > 0) ring.open--;
  }

  /** Records an isolated app's memory report (MiB): the slot keeps the highest. */
  memory(app: string, mb: number): void {
    if (!Number.isFinite(mb)) return;
    const ring = this.#rings.get(app) ?? this.#add(app);
    if (ring === undefined) return;
    const slot = this.#slot();
    if (slot !== ring.last) this.#roll(ring, slot);
    ring.memory ??= new Float32Array(this.#slots).fill(Number.NaN);
    const at = this.#position(ring.last);
    const kept = ring.memory[at]!;
    if (Number.isNaN(kept) || mb > kept) ring.memory[at] = mb;
    ring.memoryMb = mb;
    ring.memoryAt = ring.last;
  }

  /** Frees the rings of apps with nothing open and nothing recorded for a whole window. */
  sweep(): void {
    const slot = this.#slot();
    for (const [app, ring] of this.#rings) {
      if (ring.open === 0 && slot - ring.last >= this.#slots) this.#rings.delete(app);
    }
    if (this.#rings.size < this.#maxApps) this.#warned = false;
  }

  /** Forgets an app at once (it was removed). */
  drop(app: string): void {
    const ring = this.#rings.get(app);
    if (ring !== undefined && ring.open === 0) this.#rings.delete(app);
  }

  /** The app's figures over the window, oldest slot first (zeros for an app without traffic). */
  series(app: string): AppFigureSeries {
    return this.seriesOf(this.raw(app));
  }

  /** Requests per second, p95 and error rate of each app named, oldest slot first. */
  summary(apps: readonly string[]): FigureSummary {
    return this.summaryOf(this.rawSummary(apps));
  }

  /** The app's raw slots over the window (what another replica merges with its own). */
  raw(app: string): RawAppFigures {
    const ring = this.#rings.get(app);
    const slots: RawSlot[] = [];
    if (ring !== undefined) {
      const current = Math.floor(this.#now() / this.#stepMs);
      for (let slot = current - this.#slots + 1; slot <= current; slot++) {
        const raw = this.#rawSlot(ring, slot);
        if (raw !== undefined) slots.push(raw);
      }
    }
    return { app, stepSeconds: this.stepSeconds, memory: ring?.memory !== undefined, slots };
  }

  /** The raw slots of each app named. */
  rawSummary(apps: readonly string[]): RawFigureSummary {
    const out: Record<string, RawAppFigures> = {};
    for (const app of apps) out[app] = this.raw(app);
    return { stepSeconds: this.stepSeconds, apps: out };
  }

  /**
   * The points of `raw` (this replica's, or merged from several) over this replica's window on
   * its clock: a slot outside the window (another replica's clock is ahead or behind) is left out.
   */
  seriesOf(raw: RawAppFigures): AppFigureSeries {
    const now = this.#now();
    const current = Math.floor(now / this.#stepMs);
    const bySlot = this.#bySlot(raw);
    const points: FigurePoint[] = [];
    for (let slot = current - this.#slots + 1; slot <= current; slot++) {
      const s = bySlot.get(slot * this.#stepMs);
      const point: FigurePoint = {
        at: new Date(slot * this.#stepMs).toISOString(),
        ...rates(s, this.#seconds(slot, current, now)),
        p50Ms: s === undefined ? null : histogramQuantile(s.histogram, s.count, 0.5),
        openConnections: s?.open ?? 0,
      };
      if (raw.memory) {
        const mb = s?.memoryMb;
        (point as { memoryMb?: number | null }).memoryMb =
          mb === undefined || mb === null ? null : round(mb, 1);
      }
      points.push(point);
    }
    return { app: raw.app, stepSeconds: this.stepSeconds, points };
  }

  /** Requests per second, p95 and error rate of each app of `raw`, as `seriesOf` reads them. */
  summaryOf(raw: RawFigureSummary): FigureSummary {
    const now = this.#now();
    const current = Math.floor(now / this.#stepMs);
    const out: FigureSummary['apps'] = {};
    for (const [app, figures] of Object.entries(raw.apps)) {
      const bySlot = this.#bySlot(figures);
      const rps: number[] = [];
      const p95Ms: (number | null)[] = [];
      const errorRate: number[] = [];
      for (let slot = current - this.#slots + 1; slot <= current; slot++) {
        const r = rates(bySlot.get(slot * this.#stepMs), this.#seconds(slot, current, now));
        rps.push(r.rps);
        p95Ms.push(r.p95Ms);
        errorRate.push(r.errorRate);
      }
      out[app] = { rps, p95Ms, errorRate };
    }
    return { stepSeconds: this.stepSeconds, apps: out };
  }

  /** Every app with a ring: what is open now and its memory report of this slot or the one before. */
  *current(): IterableIterator<CurrentAppFigures> {
    const slot = this.#slot();
    for (const ring of this.#rings.values()) {
      const fresh = ring.memoryMb !== undefined && slot - ring.memoryAt <= 1;
      yield { app: ring.app, openConnections: ring.open, memoryMb: fresh ? ring.memoryMb : undefined };
    }
  }

  #add(app: string): AppRing | undefined {
    if (this.#rings.size >= this.#maxApps) {
      this.#refused++;
      if (!this.#warned) {
        this.#warned = true;
        this.#log?.warn(
          { maxApps: this.#maxApps, app },
          'live figures are kept for at most this many apps at once; apps beyond it show none until others go quiet',
        );
      }
      return undefined;
    }
    const ring = new AppRing(app, this.#slots, this.#slot());
    this.#rings.set(app, ring);
    return ring;
  }

  /**
   * Keeps the current slot in a field, moved on by a timer at each slot's end, so that a request
   * costs no clock reading (two readings were about half of its cost). Without it every call
   * reads the clock. Stopped by `stop()`; the timer does not keep the process alive.
   */
  start(): void {
    if (this.#timer !== undefined) return;
    const tick = (): void => {
      const now = this.#now();
      this.#current = Math.floor(now / this.#stepMs);
      // A little past the boundary: a timer that fires early must not read the old slot again.
      this.#timer = setTimeout(tick, (this.#current + 1) * this.#stepMs - now + 1);
      this.#timer.unref();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#current = undefined;
  }

  #slot(): number {
    return this.#current ?? Math.floor(this.#now() / this.#stepMs);
  }

  #position(slot: number): number {
    const n = this.#slots;
    return ((slot % n) + n) % n;
  }

  #offset(slot: number): number {
    return this.#position(slot) * FIELDS;
  }

  /**
   * Moves the ring on to `slot`: the slots in between start empty, with as many connections
   * open as were open when the last one was written (nothing opened or closed meanwhile).
   * A clock that went back keeps writing into the newest slot.
   */
  #roll(ring: AppRing, slot: number): void {
    if (slot < ring.last) return;
    const data = ring.data;
    const from = Math.max(ring.last + 1, slot - this.#slots + 1);
    for (let s = from; s <= slot; s++) {
      const base = this.#offset(s);
      data.fill(0, base, base + FIELDS);
      data[base + PEAK_OPEN] = ring.open;
      if (ring.memory !== undefined) ring.memory[this.#position(s)] = Number.NaN;
    }
    ring.last = slot;
  }

  /** Where `slot`'s fields start in the ring, or -1 when the ring has not written it (yet, or any more). */
  #read(ring: AppRing, slot: number): number {
    if (slot > ring.last || slot <= ring.last - this.#slots) return -1;
    return this.#offset(slot);
  }

  /** Open connections in a slot the ring has not written: after its last write, what is open now. */
  #openAfter(ring: AppRing, slot: number): number {
    return slot > ring.last ? ring.open : 0;
  }

  /** The seconds a slot covers so far: a whole step, or the current one's part gone by (≥ 1 s). */
  #seconds(slot: number, current: number, now: number): number {
    const step = this.#stepMs / 1000;
    if (slot < current) return step;
    return Math.min(step, Math.max(1, (now - slot * this.#stepMs) / 1000));
  }

  /** `slot` of `ring` in the raw form; undefined when nothing was counted, open or reported in it. */
  #rawSlot(ring: AppRing, slot: number): RawSlot | undefined {
    const base = this.#read(ring, slot);
    const data = ring.data;
    const count = base < 0 ? 0 : data[base + COUNT]!;
    const open = base < 0 ? this.#openAfter(ring, slot) : data[base + PEAK_OPEN]!;
    const mb = base < 0 || ring.memory === undefined ? Number.NaN : ring.memory[this.#position(slot)]!;
    if (count === 0 && open === 0 && Number.isNaN(mb)) return undefined;
    // Plain loops and one object shape: this runs for every slot of up to 200 apps per list read.
    const histogram = new Array<number>(BUCKETS);
    for (let b = 0; b < BUCKETS; b++) histogram[b] = base < 0 ? 0 : data[base + HISTOGRAM + b]!;
    const raw: MutableSlot = {
      at: slot * this.#stepMs,
      count,
      errors: base < 0 ? 0 : data[base + ERRORS]!,
      open,
      histogram,
    };
    if (ring.memory !== undefined) raw.memoryMb = Number.isNaN(mb) ? null : mb;
    return raw;
  }

  /** The slots of `raw` by start time, those of another step left out. */
  #bySlot(raw: RawAppFigures): Map<number, RawSlot> {
    const bySlot = new Map<number, RawSlot>();
    if (raw.stepSeconds !== this.stepSeconds) return bySlot;
    for (const slot of raw.slots) bySlot.set(slot.at, slot);
    return bySlot;
  }
}

/** Requests per second, p95 and the share of 5xx of a slot (`undefined`: nothing in it) over `seconds`. */
function rates(
  slot: RawSlot | undefined,
  seconds: number,
): { rps: number; p95Ms: number | null; errorRate: number } {
  if (slot === undefined) return { rps: 0, p95Ms: null, errorRate: 0 };
  const count = slot.count;
  return {
    rps: round(count / seconds, 3),
    p95Ms: histogramQuantile(slot.histogram, count, 0.95),
    errorRate: count === 0 ? 0 : round(slot.errors / count, 4),
  };
}

/**
 * Adds up the raw figures of one app from several replicas, slot by slot (aligned by slot start):
 * request and 5xx counts, histogram buckets, open connections (each replica's peak, so the sum
 * can exceed the peak of the whole at one instant; it is what the replicas held at most between
 * them), and memory (each replica's own app instance, so the sum is the app's memory across them;
 * null where none reported). Quantiles are read from the summed histogram afterwards, as exact as
 * from one replica that served all the traffic. Pure; throws on parts of different steps.
 */
export function mergeRawFigures(parts: readonly RawAppFigures[]): RawAppFigures {
  const first = parts[0];
  if (first === undefined) throw new RangeError('nothing to merge: no figures given');
  const memory = parts.some((p) => p.memory);
  const bySlot = new Map<number, MutableSlot>();
  for (const part of parts) {
    if (part.stepSeconds !== first.stepSeconds || part.app !== first.app) {
      throw new RangeError(
        `figures of ${part.app} in ${part.stepSeconds} s slots do not merge with ${first.app} in ${first.stepSeconds} s slots`,
      );
    }
    for (const slot of part.slots) {
      let sum = bySlot.get(slot.at);
      if (sum === undefined) {
        sum = { at: slot.at, count: 0, errors: 0, open: 0, histogram: new Array<number>(BUCKETS).fill(0) };
        if (memory) sum.memoryMb = null;
        bySlot.set(slot.at, sum);
      }
      sum.count += slot.count;
      sum.errors += slot.errors;
      sum.open += slot.open;
      const histogram = sum.histogram as number[];
      for (let b = 0; b < BUCKETS; b++) histogram[b]! += slot.histogram[b] ?? 0;
      const mb = slot.memoryMb;
      if (mb !== undefined && mb !== null) sum.memoryMb = (sum.memoryMb ?? 0) + mb;
    }
  }
  const slots = [...bySlot.values()].sort((a, b) => a.at - b.at);
  return { app: first.app, stepSeconds: first.stepSeconds, memory, slots };
}

/** The summaries of several replicas, each app's slots merged as `mergeRawFigures` does. */
export function mergeRawSummaries(parts: readonly RawFigureSummary[]): RawFigureSummary {
  const first = parts[0];
  if (first === undefined) throw new RangeError('nothing to merge: no figures given');
  const apps: Record<string, RawAppFigures> = {};
  for (const app of Object.keys(first.apps)) {
    apps[app] = mergeRawFigures(parts.flatMap((p) => (p.apps[app] !== undefined ? [p.apps[app]] : [])));
  }
  return { stepSeconds: first.stepSeconds, apps };
}

/** Whether `value` is `app`'s raw figures in `stepSeconds` slots, as another replica answers them. */
export function isRawAppFigures(value: unknown, app: string, stepSeconds: number): value is RawAppFigures {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<RawAppFigures>;
  return (
    v.app === app &&
    v.stepSeconds === stepSeconds &&
    typeof v.memory === 'boolean' &&
    Array.isArray(v.slots) &&
    v.slots.every((slot) => isRawSlot(slot, stepSeconds * 1000))
  );
}

/** Whether `value` is the raw summary of exactly `apps` in `stepSeconds` slots. */
export function isRawFigureSummary(
  value: unknown,
  apps: readonly string[],
  stepSeconds: number,
): value is RawFigureSummary {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<RawFigureSummary>;
  if (v.stepSeconds !== stepSeconds || typeof v.apps !== 'object' || v.apps === null) return false;
  const answered = v.apps;
  return apps.every((app) => isRawAppFigures(answered[app], app, stepSeconds));
}

const isCount = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0;

function isRawSlot(value: unknown, stepMs: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<RawSlot>;
  return (
    isCount(s.at) &&
    s.at % stepMs === 0 &&
    isCount(s.count) &&
    isCount(s.errors) &&
    isCount(s.open) &&
    Array.isArray(s.histogram) &&
    s.histogram.length === BUCKETS &&
    s.histogram.every(isCount) &&
    (s.memoryMb === undefined ||
      s.memoryMb === null ||
      (typeof s.memoryMb === 'number' && Number.isFinite(s.memoryMb)))
  );
}

/**
 * The `q` quantile of a latency histogram of `count` requests (bucket counts as RawSlot's),
 * interpolated linearly in its bucket (see LATENCY_BOUNDS_MS for the error); null when `count` is 0.
 */
export function histogramQuantile(histogram: ArrayLike<number>, count: number, q: number): number | null {
  if (count === 0) return null;
  const rank = q * count;
  let below = 0;
  for (let b = 0; b < BUCKETS; b++) {
    const n = histogram[b]!;
    if (n > 0 && below + n >= rank) {
      if (b === LATENCY_BOUNDS_MS.length) return LATENCY_BOUNDS_MS[b - 1]!;
      const lower = b === 0 ? 0 : LATENCY_BOUNDS_MS[b - 1]!;
      const upper = LATENCY_BOUNDS_MS[b]!;
      return round(lower + ((upper - lower) * (rank - below)) / n, 3);
    }
    below += n;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
