// DOM building without HTML parsing: every value lands in textContent or setAttribute, so event
// strings (messages, sources, codes) can never become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on')) {
      // Handlers are functions only: a string here would be an inline handler, which CSP refuses anyway.
      if (typeof value !== 'function') throw new TypeError('event handler must be a function: ' + name);
      node.addEventListener(name.slice(2), value);
    }
    else node.setAttribute(name, value === true ? '' : String(value));
  }
}

/** h('a', {href, class}, 'text', child): an HTML element; strings become text nodes. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** s('path', {d}): an SVG element. */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function replace(node, ...children) {
  clear(node);
  append(node, children);
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** A link to an event's own page; the id is path-encoded so it stays one path segment. */
export function eventHref(id) {
  return '/events/' + encodeURIComponent(id);
}
