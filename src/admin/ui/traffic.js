/**
 * The app list's Requests/s column: each drawn row's last hour as a small chart, from
 * `GET api/figures?apps=…` (at most MAX_APPS names a call). Only the apps in view are asked for,
 * once their figures are older than a slot (the server's minute), so scrolling through 10,000
 * apps asks for what is seen, not for the fleet; while the list stays put, the rows in view are
 * asked again each slot.
 */

/** The server's cap on names per call (src/admin/figures-api.ts MAX_FIGURE_APPS). */
const MAX_APPS = 200;
/** Apps that came into view are asked for this long after: one ask for a burst of scrolling. */
const SETTLE_MS = 250;

/**
 * @typedef {{rps: number[], p95Ms: (number | null)[], errorRate: number[]}} Traffic
 */

export class TrafficFigures {
  #load;
  #onChange;
  /** @type {Map<string, {traffic: Traffic, at: number}>} */
  #known = new Map();
  /** @type {string[]} The apps in view, last told. */
  #inView = [];
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer;
  #stepMs = 60_000;
  /** When the pending ask is due (ms since the epoch). */
  #due = 0;
  #stopped = true;
  #loading = false;

  /**
   * @param {{
   *   load: (names: string[]) => Promise<{stepSeconds: number, apps: Record<string, Traffic>}>,
   *   onChange: (names: string[]) => void,
   * }} options `load` asks the API; `onChange` names the apps whose figures came in.
   */
  constructor({ load, onChange }) {
    this.#load = load;
    this.#onChange = onChange;
  }

  /** @param {string} name */
  get(name) {
    return this.#known.get(name)?.traffic;
  }

  /** Starts asking (after sign-in). */
  start() {
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Stops asking and forgets every figure (sign-out). */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#known.clear();
    this.#inView = [];
  }

  /**
   * The apps drawn now: those without fresh figures are asked for once scrolling settles.
   *
   * @param {string[]} names
   */
  inView(names) {
    this.#inView = names;
    if (names.some((name) => this.#stale(name))) this.#schedule(SETTLE_MS);
  }

  /** @param {string} name */
  #stale(name) {
    const known = this.#known.get(name);
    return known === undefined || Date.now() - known.at >= this.#stepMs;
  }

  /**
   * Asks in `ms`, unless an ask is due sooner: a stream of redraws (scrolling, status events)
   * never pushes the next ask back.
   *
   * @param {number} ms
   */
  #schedule(ms) {
    if (this.#stopped || this.#loading) return;
    const due = Date.now() + ms;
    if (this.#timer !== undefined && this.#due <= due) return;
    clearTimeout(this.#timer);
    this.#due = due;
    this.#timer = setTimeout(() => void this.#refresh(), ms);
  }

  async #refresh() {
    this.#timer = undefined;
    const names = this.#inView.filter((name) => this.#stale(name));
    this.#loading = true;
    let failed = false;
    try {
      for (let i = 0; i < names.length && !this.#stopped; i += MAX_APPS) {
        const batch = names.slice(i, i + MAX_APPS);
        const answer = await this.#load(batch);
        if (this.#stopped) return;
        this.#stepMs = Math.max(1, answer.stepSeconds) * 1000;
        const at = Date.now();
        const changed = [];
        for (const [name, traffic] of Object.entries(answer.apps)) {
          this.#known.set(name, { traffic, at });
          changed.push(name);
        }
        this.#onChange(changed);
      }
    } catch {
      // The figures are an extra: a failed ask leaves the charts as they were, asked next slot.
      failed = true;
    } finally {
      this.#loading = false;
    }
    // Forget apps long out of view, so scrolling through the fleet holds no more than it shows.
    if (this.#known.size > 4 * MAX_APPS) {
      const keep = new Set(this.#inView);
      for (const name of this.#known.keys()) if (!keep.has(name)) this.#known.delete(name);
    }
    const more = !failed && this.#inView.some((name) => this.#stale(name));
    this.#schedule(more ? SETTLE_MS : this.#stepMs);
  }
}
