import {
  elementScroll,
  observeElementOffset,
  observeElementRect,
  Virtualizer,
} from './vendor/virtual-core/index.js';

/**
 * @typedef {{index: number, key: string | number | bigint, start: number, end: number}} VirtualItem
 */

/**
 * The rows of a table body, virtualized with @tanstack/virtual-core: only the rows in (and just
 * around) the scroll container's view are in the DOM. The table stays a table: the rows above
 * and below the window are stood in for by one spacer row each, in their own `tbody` beside the
 * real one (hidden from assistive technology), so the real body holds only real rows and
 * column widths, borders and the phone-width card layout work as before. Row heights are
 * measured as the rows are drawn (and whenever they change size), so rows of any height fit.
 */
export class VirtualRows {
  #virtualizer;
  #cleanup;
  #before;
  #after;
  #render;
  /** @type {readonly string[]} */
  #keys = [];
  #drawing = false;
  #again = false;

  /**
   * @param {{
   *   scroller: HTMLElement, body: HTMLElement,
   *   estimateSize: () => number,
   *   render: (items: VirtualItem[]) => HTMLElement[],
   * }} options `render` puts the rows of `items` in the body, in order, and returns them
   */
  constructor({ scroller, body, estimateSize, render }) {
    this.#render = render;
    this.#before = spacer('before');
    this.#after = spacer('after');
    body.before(this.#before.group);
    body.after(this.#after.group);
    this.#virtualizer = new Virtualizer({
      ...this.#options([]),
      getScrollElement: () => scroller,
      estimateSize: () => estimateSize(),
      observeElementRect,
      observeElementOffset,
      scrollToFn: elementScroll,
      // Enough rows beyond the view that Tab always finds the next row in the DOM (focusing it
      // scrolls it into view, which draws the ones after it).
      overscan: 6,
      measureElement: outerHeight,
      onChange: () => this.draw(),
    });
    this.#cleanup = this.#virtualizer._didMount();
    this.#virtualizer._willUpdate();
  }

  /**
   * The rows to show, by key, in order; the window is drawn again.
   *
   * @param {readonly string[]} keys
   */
  setKeys(keys) {
    this.#keys = keys;
    this.#virtualizer.setOptions({ ...this.#virtualizer.options, ...this.#options(keys) });
    this.#virtualizer._willUpdate();
    this.draw();
  }

  /** @param {readonly string[]} keys */
  #options(keys) {
    // A new key function per list: the virtualizer recomputes its positions when it changes.
    return { count: keys.length, getItemKey: (/** @type {number} */ index) => keys[index] ?? index };
  }

  /** The keys shown, in order. */
  get keys() {
    return this.#keys;
  }

  /** Forgets every measured height (the layout changed, say from table rows to cards). */
  remeasure() {
    this.#virtualizer.measure();
    this.draw();
  }

  /** Scrolls the row at `index` into view. */
  scrollToIndex(/** @type {number} */ index) {
    this.#virtualizer.scrollToIndex(index, { align: 'auto' });
  }

  /** Draws the window: the rows in view and the spacers' heights. Safe to call at any time. */
  draw() {
    // Measuring a row can move the window, which calls back here: draw again once done instead.
    if (this.#drawing) {
      this.#again = true;
      return;
    }
    this.#drawing = true;
    try {
      do {
        this.#again = false;
        this.#drawOnce();
      } while (this.#again);
    } finally {
      this.#drawing = false;
    }
  }

  #drawOnce() {
    const v = this.#virtualizer;
    const items = /** @type {VirtualItem[]} */ (v.getVirtualItems());
    const rows = this.#render(items);
    const first = items[0];
    const last = items.at(-1);
    setHeight(this.#before.cell, first === undefined ? 0 : first.start);
    setHeight(this.#after.cell, last === undefined ? 0 : v.getTotalSize() - last.end);
    rows.forEach((row, i) => {
      const index = String(/** @type {VirtualItem} */ (items[i]).index);
      if (row.dataset.index !== index) row.dataset.index = index;
      v.measureElement(row);
    });
  }

  /** Stops observing the scroll container. */
  destroy() {
    this.#cleanup();
  }
}

/**
 * A spacer: a `tbody` with one row whose height stands for rows not drawn.
 *
 * @param {string} where
 */
function spacer(where) {
  const group = document.createElement('tbody');
  group.className = `virtual-spacer virtual-spacer-${where}`;
  group.setAttribute('aria-hidden', 'true');
  const row = document.createElement('tr');
  const cell = document.createElement('td');
  cell.className = 'virtual-spacer-cell';
  row.append(cell);
  group.append(row);
  return { group, cell };
}

/**
 * Through the CSS object model (never a `style` attribute: the page's CSP has no inline styles).
 *
 * @param {HTMLElement} cell
 * @param {number} px
 */
function setHeight(cell, px) {
  const value = `${Math.max(0, Math.round(px))}px`;
  if (cell.style.height !== value) cell.style.height = value;
  // An empty spacer takes no room at all (a table row has a minimum height otherwise).
  cell.parentElement?.toggleAttribute('hidden', px <= 0);
}

/**
 * A row's height with its margins (the cards on a phone-sized screen are apart by a margin).
 *
 * @param {Element} row
 */
function outerHeight(row) {
  const style = getComputedStyle(row);
  return Math.round(
    row.getBoundingClientRect().height +
      Number.parseFloat(style.marginTop) +
      Number.parseFloat(style.marginBottom),
  );
}
