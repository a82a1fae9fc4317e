// `/upload` (signed in): choose or drop a file; title, description, visibility, sidecar
// subtitles with their language, languages to translate into. A progress bar with bytes per
// second and time left; then the processing steps with progress; then a link to watch.
import { $, h, formatBytes, formatTime, stateBox } from "./dom.js";
import { signedIn } from "./frame.js";
import { stepName } from "./media.js";
import { apiJson } from "./session.js";
import { followStatus } from "./status.js";
import { transfer, unfinishedUploads } from "./transfer.js";

const form = $("#upload-form");
const gate = stateBox($("#upload-gate"));
const formState = stateBox($("#upload-status"));
const transferState = stateBox($("#upload-transfer-status"));
const processingState = stateBox($("#processing-status"));
const STEPS = ["upload", "queued", "probe", "encode", "package", "ready"];
let chosen = null;
let unfinished = [];

function choose(file) {
  if (!file) return;
  chosen = file;
  $("#upload-chosen").textContent = `${file.name} · ${formatBytes(file.size)}`;
  const earlier = unfinished.find((item) => item.name === file.name && item.size === file.size);
  if (earlier) {
    // The same file as an upload that stopped: it continues with what it was sent with.
    const { title = "", description = "", visibility = "private", translate_to: translateTo = "" } = earlier.metadata;
    form.title.value = title;
    form.description.value = description;
    form.querySelector(`input[name=visibility][value=${visibility === "public" ? "public" : "private"}]`).checked = true;
    for (const box of form.querySelectorAll("input[name=translate_to]")) box.checked = translateTo.split(",").includes(box.value);
    $("#upload-chosen").textContent += " · its upload stopped part-way: Upload continues it";
    $("#upload-button").textContent = "Continue the upload";
  } else if (!form.title.value.trim()) {
    form.title.value = file.name.replace(/\.[^.]+$/, "").slice(0, 200);
  }
}

function setUpDropzone() {
  const zone = $("#dropzone");
  form.file.addEventListener("change", () => choose(form.file.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    choose(event.dataTransfer.files[0]);
  });
}

function addSidecarRow() {
  const index = document.querySelectorAll(".sidecar-row").length;
  if (index >= 8) return;
  const fileId = `sidecar-file-${index}`;
  const langId = `sidecar-lang-${index}`;
  const remove = h("button", { type: "button", class: "secondary", "aria-label": `Remove subtitle file ${index + 1}` }, "Remove");
  const row = h(
    "div",
    { class: "sidecar-row" },
    h("div", {}, h("label", { for: fileId }, `Subtitle file ${index + 1}`), h("input", { id: fileId, type: "file", accept: ".srt,.vtt", class: "sidecar-file" })),
    h("div", {}, h("label", { for: langId }, "Language"), h("input", { id: langId, type: "text", class: "sidecar-lang", maxlength: 12, placeholder: "en", pattern: "[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?" })),
    remove,
  );
  remove.addEventListener("click", () => row.remove());
  $("#sidecars").append(row);
}

async function loadLanguages() {
  const box = $("#translate-to");
  const note = $("#translate-to-status");
  note.textContent = "Loading the installed languages…";
  try {
    const { languages } = await apiJson("/v1/translations");
    box.replaceChildren(
      ...languages.map((item) => h("label", {}, h("input", { type: "checkbox", name: "translate_to", value: item.lang }), `${item.label} (${item.lang})`)),
    );
    note.textContent = languages.length
      ? "The subtitles (embedded or sent here) are translated offline by the installed models."
      : "No translation model is installed on this server (`vodray models install`).";
  } catch (error) {
    note.textContent = `Could not list the languages: ${error.message}`;
  }
}

function sidecars() {
  const rows = [...document.querySelectorAll(".sidecar-row")];
  const found = [];
  for (const row of rows) {
    const file = row.querySelector(".sidecar-file").files[0];
    const langInput = row.querySelector(".sidecar-lang");
    if (!file) continue;
    if (!langInput.value.trim() || !langInput.checkValidity()) {
      langInput.focus();
      throw new Error(`Give the language of ${file.name} as a code such as en, fr or pt-BR.`);
    }
    found.push({ file, lang: langInput.value.trim() });
  }
  return found;
}

function renderSteps(current) {
  const at = STEPS.indexOf(current);
  $("#processing-steps").replaceChildren(
    ...STEPS.map((step, index) => h("li", { class: index < at ? "done" : index === at ? "current" : "" , "aria-current": index === at ? "step" : null }, stepName(step))),
  );
}

function showTransfer(sent, total, startedAt, sentAtStart) {
  $("#upload-bar").value = total ? sent / total : 0;
  const elapsed = (performance.now() - startedAt) / 1000;
  const rate = elapsed > 0.5 ? (sent - sentAtStart) / elapsed : 0;
  $("#upload-bytes").textContent = `${formatBytes(sent)} of ${formatBytes(total)} (${Math.floor((100 * sent) / (total || 1))}%)`;
  $("#upload-rate").textContent = rate > 0 ? `${formatBytes(rate)}/s · ${formatTime((total - sent) / rate)} left` : "";
}

async function process(videoId, extraSubtitles) {
  $("#processing-panel").hidden = false;
  $("#processing-panel").dataset.videoId = videoId;
  $("#watch-link").href = `/watch/${videoId}`;
  renderSteps("queued");
  for (const { file, lang } of extraSubtitles) {
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("lang", lang);
    try {
      await apiJson(`/v1/videos/${videoId}/subtitles`, { method: "POST", body });
    } catch (error) {
      processingState.error(`${file.name} was not added: ${error.message}`);
    }
  }
  const last = await followStatus(videoId, {
    onStatus(status) {
      const step = status.status === "queued" ? "queued" : status.status === "ready" ? "ready" : status.step;
      renderSteps(STEPS.includes(step) ? step : "encode");
      $("#processing-step").textContent = stepName(step);
      $("#processing-percent").textContent = `${Math.round((status.progress || 0) * 100)}%`;
      $("#processing-bar").value = status.progress || 0;
    },
    onError: (error) => processingState.error(`Progress unavailable: ${error.message} (retrying)`),
  });
  if (last && last.status === "ready") {
    processingState.clear();
    $("#processing-bar").value = 1;
    $("#processing-percent").textContent = "100%";
    $("#watch-link").href = `/watch/${videoId}`;
    $("#processing-done").hidden = false;
    $("#watch-link").focus();
  } else {
    processingState.error(`Processing failed: ${(last && last.error) || "no reason was given"}`);
  }
}

async function submit(event) {
  event.preventDefault();
  formState.clear();
  if (!chosen) {
    formState.error("Choose a video file first.");
    return;
  }
  const title = form.title.value.trim();
  if (!title) {
    formState.error("Give the video a title.");
    form.title.focus();
    return;
  }
  let extra;
  try {
    extra = sidecars();
  } catch (error) {
    formState.error(error.message);
    return;
  }
  const fields = {
    title,
    description: form.description.value,
    visibility: form.querySelector("input[name=visibility]:checked").value,
    translate_to: [...form.querySelectorAll("input[name=translate_to]:checked")].map((box) => box.value).join(","),
  };
  form.hidden = true;
  $("#upload-progress").hidden = false;
  $("#upload-name").textContent = chosen.name;
  const startedAt = performance.now();
  let sentAtStart = null;
  try {
    const videoId = await transfer(chosen, fields, {
      onProgress(sent, total, resumed) {
        if (sentAtStart === null) {
          sentAtStart = sent;
          // The server kept what an earlier attempt (before a reload) sent: it goes on from there.
          if (resumed) $("#upload-resumed").textContent = `Continuing an earlier upload from ${Math.floor((100 * sent) / total)}%.`;
        }
        showTransfer(sent, total, startedAt, sentAtStart);
        transferState.clear();
      },
      onRetry(error) {
        transferState.note(`Connection lost (${error.message}); trying again…`);
      },
      pauseButton: $("#upload-pause"),
    });
    $("#upload-pause").hidden = true;
    transferState.note("Uploaded.", "notice success");
    await process(videoId, extra);
  } catch (error) {
    transferState.error(`The upload failed: ${error.message}`);
    form.hidden = false;
  }
}

async function main() {
  const me = await signedIn;
  if (!me) {
    const next = encodeURIComponent("/upload");
    $("#upload-gate").replaceChildren(
      h("p", { class: "notice" }, "Sign in to upload: ", h("a", { href: `/signin?next=${next}` }, "sign in"), " or ", h("a", { href: `/register?next=${next}` }, "create an account"), "."),
    );
    return;
  }
  form.hidden = false;
  setUpDropzone();
  $("#add-sidecar").addEventListener("click", addSidecarRow);
  form.addEventListener("submit", submit);
  loadLanguages();
  unfinished = await unfinishedUploads();
  if (unfinished.length) {
    $("#resume-list").hidden = false;
    $("#resume-items").replaceChildren(
      ...unfinished.map((item) => h("li", { text: `${item.name} (${formatBytes(item.size)}), started ${item.createdAt.toLocaleString()}` })),
    );
  }
}

main();
