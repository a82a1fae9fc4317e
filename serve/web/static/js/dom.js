// Building the page from data: every text goes in as a text node (textContent), never as
// markup, so a title like <img src=x onerror=alert(1)> shows those characters.

/** h("a", {href, class, text, onclick}, ...children): an element; strings become text nodes. */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function $(selector) {
  return document.querySelector(selector);
}

export function formatTime(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

export function formatBytes(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value >= 100 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };

/** The text an HTML-escaped string stands for (the five entities Python's html.escape writes). */
export function unescapeHtml(text) {
  return text.replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (entity) => ENTITIES[entity]);
}

/** The search API's snippet (the line HTML-escaped, hits in <mark>…</mark>) as nodes: the
 * two tags become <mark> elements, everything else is text. Never innerHTML. */
export function snippetNodes(snippet) {
  const nodes = [];
  let marked = false;
  for (const part of String(snippet).split(/(<mark>|<\/mark>)/)) {
    if (part === "<mark>") marked = true;
    else if (part === "</mark>") marked = false;
    else if (part) nodes.push(marked ? h("mark", { text: unescapeHtml(part) }) : document.createTextNode(unescapeHtml(part)));
  }
  return nodes;
}

/** A request's visible state in `box`: loading (a spinner and a sentence), an error (the API's
 * sentence and a "Try again" button), or nothing. */
export function stateBox(box) {
  return {
    loading(text) {
      box.replaceChildren(h("p", { class: "loading", text }));
    },
    error(text, retry) {
      const parts = [h("span", { text })];
      if (retry) parts.push(h("button", { type: "button", class: "secondary", onclick: retry }, "Try again"));
      box.replaceChildren(h("div", { class: "error", role: "alert" }, parts));
    },
    note(text, className = "notice") {
      box.replaceChildren(h("p", { class: className, text }));
    },
    clear() {
      box.replaceChildren();
    },
  };
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
