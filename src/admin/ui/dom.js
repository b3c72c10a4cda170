/**
 * DOM helpers. Every piece of text from the API goes in through text nodes (`append` with a
 * string, `textContent`), never as HTML, so a hostile app name or error message stays text.
 */

/**
 * Creates an element. `props`: `class`, `dataset` (object), `on<event>` (listener), anything
 * else as an attribute (`true` for an empty attribute; `false`, `null`, `undefined` skip it).
 * Children are nodes or strings (strings become text nodes); `null`/`false` are skipped.
 *
 * @param {string} tag
 * @param {Record<string, unknown>} [props]
 * @param {...(Node | string | null | undefined | false | (Node | string | null | undefined | false)[])} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/**
 * Appends children (see `h`) to `parent`.
 *
 * @param {Element} parent
 * @param {unknown[]} children
 */
export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replaces the children of `parent`.
 *
 * @param {Element} parent
 * @param {...unknown} children
 */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

/**
 * The element with `id`; throws if the page lacks it (a broken page should fail loudly).
 *
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`missing #${id}`);
  return /** @type {T} */ (el);
}

/** Text only screen readers read (e.g. which app a "Start" button is for). */
export function hiddenText(text) {
  return h('span', { class: 'visually-hidden' }, text);
}

/**
 * Where a key moves the focus in a tab list of `count` tabs from the one at `index` (the ARIA
 * tabs pattern: the arrows wrap around, Home and End go to the ends); undefined for other keys.
 *
 * @param {string} key
 * @param {number} index
 * @param {number} count
 * @returns {number | undefined}
 */
export function tabKeyTarget(key, index, count) {
  const last = count - 1;
  return {
    ArrowRight: index === last ? 0 : index + 1,
    ArrowLeft: index === 0 ? last : index - 1,
    Home: 0,
    End: last,
  }[key];
}
