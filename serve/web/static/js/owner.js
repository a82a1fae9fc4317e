// The owner's part of the watch page: add a subtitle file, ask for a translation into a
// language an installed model reaches, delete the video. (Progress while processing is in
// watch.js: it is the same long poll for everyone who may see the video.)
import { $, h, stateBox, sleep } from "./dom.js";
import { api, apiJson, errorOf, jsonBody } from "./session.js";

const TRANSLATION_WAIT_MS = 180_000;

export function ownerTools(video, { onSubtitlesChanged }) {
  $("#owner").hidden = false;
  subtitleForm(video, onSubtitlesChanged);
  translateForm(video, onSubtitlesChanged);
  deleteButton(video);
}

function subtitleForm(video, onSubtitlesChanged) {
  const form = $("#subtitle-form");
  const state = stateBox($("#subtitle-status"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.file.files[0];
    const lang = form.lang.value.trim();
    if (!file) {
      state.error("Choose an .srt or .vtt file.");
      return;
    }
    if (!form.lang.checkValidity() || !lang) {
      state.error("Give the language as a code such as fr, de or pt-BR.");
      form.lang.focus();
      return;
    }
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("lang", lang);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    state.loading(`Sending ${file.name}…`);
    try {
      const track = await apiJson(`/v1/videos/${video.id}/subtitles`, { method: "POST", body });
      const notes = [`${track.cues} lines in ${track.lang}`];
      if (track.dropped) notes.push(`${track.dropped} unreadable lines dropped`);
      if (track.warnings && track.warnings.length) notes.push(track.warnings.join(" "));
      state.note(track.published ? `Added: ${notes.join("; ")}.` : `Kept: ${notes.join("; ")}. It is published when processing ends.`, "notice success");
      form.reset();
      if (track.published) onSubtitlesChanged(track.lang);
    } catch (error) {
      state.error(`The file was not added: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

async function translateForm(video, onSubtitlesChanged) {
  const form = $("#translate-form");
  const select = $("#translate-lang");
  const state = stateBox($("#translate-status"));
  const button = $("#translate-button");
  let reachable = [];

  function fill(current) {
    const have = new Set(current.subtitles.map((track) => track.lang));
    const originals = new Set(current.subtitles.filter((t) => t.source !== "translated").map((t) => t.lang));
    const choices = reachable.filter((item) => !have.has(item.lang) && item.from_langs.some((from) => originals.has(from)));
    select.replaceChildren(...choices.map((item) => h("option", { value: item.lang }, `${item.label} (${item.lang})`)));
    const usable = choices.length > 0 && current.status === "ready";
    select.disabled = !usable;
    button.disabled = !usable;
    $("#translate-hint").textContent = !originals.size
      ? "The video has no subtitles to translate yet."
      : choices.length
        ? "Languages the installed translation models reach from this video's subtitles."
        : "No installed translation model reaches another language from this video's subtitles.";
  }

  state.loading("Loading the languages…");
  try {
    reachable = (await apiJson("/v1/translations")).languages;
    state.clear();
  } catch (error) {
    state.error(`Could not list the languages: ${error.message}`);
  }
  fill(video);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const lang = select.value;
    if (!lang) return;
    const label = select.selectedOptions[0].textContent;
    button.disabled = true;
    state.loading(`Translating into ${label}…`);
    try {
      await apiJson(`/v1/videos/${video.id}/translations`, jsonBody({ lang }));
      const deadline = Date.now() + TRANSLATION_WAIT_MS;
      const warningsBefore = new Set(video.subtitles_warnings || []);
      while (Date.now() < deadline) {
        await sleep(1500);
        const latest = await apiJson(`/v1/videos/${video.id}`);
        if (latest.subtitles.some((track) => track.lang === lang)) {
          state.note(`${label} is ready.`, "notice success");
          video = latest;
          fill(latest);
          onSubtitlesChanged(lang);
          return;
        }
        const fresh = (latest.subtitles_warnings || []).filter((w) => !warningsBefore.has(w) && w.includes(lang));
        if (fresh.length) throw new Error(fresh.join(" "));
      }
      throw new Error("it is taking long: look again in a few minutes");
    } catch (error) {
      state.error(`No ${label}: ${error.message}`);
      button.disabled = false;
    }
  });
}

function deleteButton(video) {
  const dialog = $("#delete-dialog");
  const state = stateBox($("#delete-status"));
  $("#delete-dialog-name").textContent = video.title;
  $("#delete-button").addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "delete") return;
    state.loading("Deleting…");
    try {
      const response = await api(`/v1/videos/${video.id}`, { method: "DELETE" });
      if (!response.ok) throw await errorOf(response);
      window.location.assign("/?deleted=1");
    } catch (error) {
      state.error(`The video was not deleted: ${error.message}`);
    }
  });
}
