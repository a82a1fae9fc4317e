// The transcript beside the player: the cues of one language (its WebVTT file, read with the
// caller's token), following playback; each line is a button that seeks to it; a filter box
// keeps the lines holding the words typed. Cue text is shown as text (tags dropped first, then
// the escaped & < > read back), never as markup.
import { $, h, formatTime, stateBox, unescapeHtml } from "./dom.js";
import { api, errorOf } from "./session.js";

const TIMING = /^((?:\d+:)?\d{1,2}:\d{2}[.,]\d{3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{2}[.,]\d{3})/;

function seconds(stamp) {
  const parts = stamp.replace(",", ".").split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

/** [{start, end, text}] of a WebVTT file. */
export function parseVtt(source) {
  const cues = [];
  for (const block of source.replace(/\r\n?/g, "\n").split(/\n{2,}/)) {
    const lines = block.split("\n");
    const at = lines.findIndex((line) => TIMING.test(line));
    if (at < 0) continue;
    const [, start, end] = TIMING.exec(lines[at]);
    const text = unescapeHtml(lines.slice(at + 1).join("\n").replace(/<[^>]*>/g, "")).trim();
    if (text) cues.push({ start: seconds(start), end: seconds(end), text });
  }
  return cues;
}

export function createTranscript({ video, videoElement, player }) {
  const panel = $("#transcript");
  const list = $("#transcript-lines");
  const select = $("#transcript-lang");
  const filter = $("#transcript-filter");
  const count = $("#transcript-count");
  const state = stateBox($("#transcript-status"));
  let cues = [];
  let items = [];
  let current = -1;
  let lang = null;
  let loads = 0;

  function fill(tracks) {
    select.replaceChildren(...tracks.map((track) => h("option", { value: track.lang }, `${track.label} (${track.lang})`)));
    select.disabled = !tracks.length;
    filter.disabled = !tracks.length;
  }

  function showCount() {
    const shown = items.filter((item) => !item.hidden).length;
    count.textContent = filter.value.trim() ? `${shown} of ${cues.length} lines` : `${cues.length} lines`;
  }

  function applyFilter() {
    const words = filter.value.trim().toLowerCase();
    cues.forEach((cue, index) => {
      items[index].hidden = Boolean(words) && !cue.text.toLowerCase().includes(words);
    });
    showCount();
  }

  function render() {
    current = -1;
    items = cues.map((cue) => {
      const button = h("button", { type: "button", title: `Play from ${formatTime(cue.start)}` },
        h("span", { class: "time", text: formatTime(cue.start) }),
        h("span", { class: "text", text: cue.text }));
      button.addEventListener("click", () => {
        videoElement.currentTime = cue.start;
        if (videoElement.paused) videoElement.play().catch(() => {});
      });
      return h("li", {}, button);
    });
    list.replaceChildren(...items);
    applyFilter();
    follow();
  }

  async function load(wanted) {
    lang = wanted;
    select.value = wanted;
    const ticket = ++loads;
    cues = [];
    list.replaceChildren();
    count.textContent = "";
    state.loading("Loading the transcript…");
    try {
      const response = await api(`/v1/videos/${video.id}/subtitles/${encodeURIComponent(wanted)}.vtt`);
      if (!response.ok) throw await errorOf(response);
      const text = await response.text();
      if (ticket !== loads) return;
      cues = parseVtt(text);
      state.clear();
      if (!cues.length) state.note("This language has no lines.");
      render();
    } catch (error) {
      if (ticket === loads) state.error(`Could not load the transcript: ${error.message}`, () => load(wanted));
    }
  }

  function follow() {
    const t = videoElement.currentTime;
    let index = -1;
    for (let i = 0; i < cues.length && cues[i].start <= t + 0.05; i += 1) if (t < cues[i].end) index = i;
    if (index === current) return;
    if (current >= 0 && items[current]) items[current].firstChild.removeAttribute("aria-current");
    current = index;
    if (index < 0 || !items[index]) return;
    const button = items[index].firstChild;
    button.setAttribute("aria-current", "true");
    if (panel.hidden || items[index].hidden) return;
    // Scroll the list, never the page.
    const top = items[index].offsetTop - list.offsetTop;
    if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - items[index].offsetHeight) {
      list.scrollTop = Math.max(0, top - list.clientHeight / 3);
    }
  }

  function playerLanguage() {
    const active = player.getTextTracks().find((track) => track.active);
    return active ? active.language : null;
  }

  select.addEventListener("change", () => load(select.value));
  filter.addEventListener("input", applyFilter);
  videoElement.addEventListener("timeupdate", follow);
  videoElement.addEventListener("seeked", follow);
  // Subtitles chosen in the player's menu: the transcript follows.
  player.addEventListener("textchanged", () => {
    const chosen = playerLanguage();
    if (chosen && chosen !== lang && video.subtitles.some((track) => track.lang === chosen)) load(chosen);
  });

  return {
    setTracks(tracks, wanted) {
      video = { ...video, subtitles: tracks };
      fill(tracks);
      if (!tracks.length) {
        state.note("This video has no subtitles yet.");
        return;
      }
      const next = [wanted, lang, playerLanguage(), tracks[0].lang].find((code) => code && tracks.some((t) => t.lang === code));
      if (wanted || next !== lang || !cues.length) load(next);
    },
    open() {
      panel.hidden = false;
      follow();
    },
  };
}
