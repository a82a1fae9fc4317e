// `/`: the videos the caller may see as cards, newest first, a page at a time; the caller's own
// videos still processing show their step and a live progress bar.
import { $, h, stateBox } from "./dom.js";
import { signedIn } from "./frame.js";
import { thumbnail, stepName } from "./media.js";
import { apiJson } from "./session.js";
import { followStatus } from "./status.js";

const PER_PAGE = 12;
const pageNumber = Math.max(1, Number(document.body.dataset.pageNumber) || 1);
const list = $("#videos");
const state = stateBox($("#videos-status"));
const watchers = new AbortController();

function progressBlock(video) {
  const step = h("span", { text: stepName(video.status === "queued" ? "queued" : "probe") });
  const percent = h("span", { text: "0%" });
  const bar = h("progress", { max: 1, value: 0, "aria-label": `Processing progress of ${video.title}` });
  const block = h("div", { class: "progress" }, h("div", { class: "progress-label" }, step, percent), bar);
  followStatus(video.id, {
    signal: watchers.signal,
    onStatus(status) {
      if (status.status === "ready") {
        step.textContent = "Ready: reload to watch";
        percent.textContent = "100%";
        bar.value = 1;
        return;
      }
      if (status.status === "failed") {
        block.replaceChildren(h("p", { class: "error", text: status.error || "Processing failed" }));
        return;
      }
      step.textContent = stepName(status.status === "queued" ? "queued" : status.step);
      percent.textContent = `${Math.round((status.progress || 0) * 100)}%`;
      bar.value = status.progress || 0;
    },
    onError(error) {
      step.textContent = `Progress unavailable: ${error.message}`;
    },
  });
  return block;
}

function card(video, me) {
  const badges = h("div", { class: "badges" });
  if (video.visibility === "private") badges.append(h("span", { class: "badge private", text: "Private" }));
  if (me && video.owner === me.id) badges.append(h("span", { class: "badge", text: "Yours" }));
  if (video.status === "failed") badges.append(h("span", { class: "badge failed", text: "Failed" }));
  const body = h("div", { class: "card-body" }, h("h2", { class: "card-title", text: video.title }), badges);
  const item = h("li", { class: "card" }, h("a", { class: "card-link", href: `/watch/${video.id}` }, thumbnail(video), body));
  if (video.status === "queued" || video.status === "processing") item.append(h("div", { class: "card-body" }, progressBlock(video)));
  if (video.status === "failed" && video.error) item.append(h("div", { class: "card-body" }, h("p", { class: "muted", text: video.error })));
  return item;
}

function pager(total) {
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  const nav = $("#pager");
  nav.replaceChildren();
  if (pages <= 1) return;
  if (pageNumber > 1) nav.append(h("a", { class: "button secondary", href: `/?page=${pageNumber - 1}`, rel: "prev" }, "Newer"));
  nav.append(h("span", { class: "muted", text: `Page ${pageNumber} of ${pages}` }));
  if (pageNumber < pages) nav.append(h("a", { class: "button secondary", href: `/?page=${pageNumber + 1}`, rel: "next" }, "Older"));
}

async function load() {
  const me = await signedIn;
  $("#home-sub").textContent = me ? "Public videos and your own." : "Public videos. Sign in to see and upload your own.";
  state.loading("Loading videos…");
  try {
    const page = await apiJson(`/v1/videos?limit=${PER_PAGE}&offset=${(pageNumber - 1) * PER_PAGE}`);
    state.clear();
    if (new URLSearchParams(window.location.search).has("deleted")) state.note("The video was deleted.", "notice success");
    list.replaceChildren(...page.items.map((video) => card(video, me)));
    if (!page.items.length) {
      const hint = me ? h("a", { href: "/upload" }, "Upload your first video") : h("a", { href: "/signin" }, "Sign in to upload one");
      list.replaceChildren(h("li", { class: "empty" }, h("p", { text: pageNumber > 1 ? "No videos on this page." : "No videos yet." }), hint));
    }
    pager(page.total);
  } catch (error) {
    state.error(`Could not load the videos: ${error.message}`, load);
  }
}

load();
