// `/search?q=`: hits with the video's poster, the highlighted snippet (text and <mark> only),
// the language and the cue's time; a subtitle hit opens /watch/{id}?t=<start>.
import { $, h, formatTime, snippetNodes, stateBox } from "./dom.js";
import { signedIn } from "./frame.js";
import { thumbnail } from "./media.js";
import { apiJson } from "./session.js";

const PER_PAGE = 20;
const params = new URLSearchParams(window.location.search);
const q = document.body.dataset.q || "";
const lang = params.get("lang") || "";
const pageNumber = Math.max(1, Number(document.body.dataset.pageNumber) || 1);
const state = stateBox($("#search-status"));
const FIELDS = { title: "Title", description: "Description", subtitles: "Subtitle line" };
const LANGUAGES = new Map();

function watchUrl(hit) {
  return hit.start_s === null || hit.start_s === undefined ? `/watch/${hit.video_id}` : `/watch/${hit.video_id}?t=${hit.start_s}`;
}

function hitItem(hit, video) {
  const where = [FIELDS[hit.field] || hit.field];
  if (hit.lang) where.push(LANGUAGES.get(hit.lang) || hit.lang);
  if (hit.lang && hit.source_lang && hit.source_lang !== hit.lang) where.push(`translated from ${LANGUAGES.get(hit.source_lang) || hit.source_lang}`);
  if (hit.start_s !== null && hit.start_s !== undefined) where.push(`at ${formatTime(hit.start_s)}`);
  const link = watchUrl(hit);
  const thumb = video ? thumbnail(video) : h("div", { class: "thumb" }, "No preview");
  return h(
    "li",
    { class: "hit" },
    h("a", { href: link, tabindex: "-1", "aria-hidden": "true" }, thumb),
    h(
      "div",
      {},
      h("h2", {}, h("a", { href: link, text: hit.title })),
      h("p", { class: "snippet" }, snippetNodes(hit.snippet)),
      h("p", { class: "muted", text: where.join(" · ") }),
    ),
  );
}

async function videosOf(hits) {
  // Each distinct video's metadata: its poster (a private one's needs the token) and language names.
  const ids = [...new Set(hits.map((hit) => hit.video_id))];
  const found = await Promise.all(ids.map((id) => apiJson(`/v1/videos/${id}`).catch(() => null)));
  const byId = new Map();
  for (const video of found) {
    if (!video) continue;
    byId.set(video.id, video);
    for (const track of video.subtitles || []) LANGUAGES.set(track.lang, track.label);
  }
  return byId;
}

function pager(total) {
  const nav = $("#pager");
  nav.replaceChildren();
  const pages = Math.ceil(total / PER_PAGE);
  const at = (n) => `/search?${new URLSearchParams({ q, ...(lang ? { lang } : {}), page: String(n) })}`;
  if (pageNumber > 1) nav.append(h("a", { class: "button secondary", href: at(pageNumber - 1), rel: "prev" }, "Previous"));
  if (pages > 1) nav.append(h("span", { class: "muted", text: `Page ${pageNumber} of ${pages}` }));
  if (pageNumber < pages && pageNumber * PER_PAGE < 1000) nav.append(h("a", { class: "button secondary", href: at(pageNumber + 1), rel: "next" }, "Next"));
}

async function languages() {
  const select = $("#search-lang");
  try {
    const installed = await apiJson("/v1/translations");
    for (const item of installed.languages) LANGUAGES.set(item.lang, item.label);
  } catch {
    // the names are a nicety: codes work too
  }
  const known = new Set(["en", ...LANGUAGES.keys(), ...(lang ? [lang] : [])]);
  for (const code of [...known].sort()) {
    select.append(h("option", { value: code, selected: code === lang }, LANGUAGES.get(code) || code));
  }
  select.addEventListener("change", () => select.form.submit());
}

async function search() {
  await signedIn;
  await languages();
  if (!q) return;
  state.loading("Searching…");
  try {
    const query = new URLSearchParams({ q, limit: String(PER_PAGE), offset: String((pageNumber - 1) * PER_PAGE) });
    if (lang) query.set("lang", lang);
    const found = await apiJson(`/v1/search?${query}`);
    const videos = await videosOf(found.items);
    state.clear();
    const ignored = found.ignored && found.ignored.length ? ` (not searched: ${found.ignored.join(" ")})` : "";
    $("#search-summary").textContent = `${found.total} ${found.total === 1 ? "result" : "results"}${ignored}`;
    $("#hits").replaceChildren(...found.items.map((hit) => hitItem(hit, videos.get(hit.video_id))));
    if (!found.items.length) $("#hits").replaceChildren(h("li", { class: "empty", text: "Nothing matches. Try fewer or other words." }));
    pager(found.total);
  } catch (error) {
    state.error(`The search failed: ${error.message}`, search);
  }
}

search();
