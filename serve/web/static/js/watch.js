// `/watch/{id}`: the player (Shaka with its UI), title, description, renditions, downloads,
// `?t=` and resume, "copy link at this time", the transcript, and the owner's tools; while the
// video is processing, its step and progress (long poll) until it can play.
import { $, h, formatBytes, formatTime, stateBox } from "./dom.js";
import { signedIn } from "./frame.js";
import { downloadLink, stepName } from "./media.js";
import { ownerTools } from "./owner.js";
import { addStoryboard, createPlayer, describeShakaError } from "./player.js";
import { forget, linkedTime, rememberPosition, savedTime } from "./resume.js";
import { apiJson } from "./session.js";
import { followStatus } from "./status.js";
import { createTranscript } from "./transcript.js";

const videoId = document.body.dataset.videoId;
const pageState = stateBox($("#watch-status"));
const playerState = stateBox($("#player-status"));
const videoElement = $("#video");
let shakaPlayer = null;
let transcript = null;

function renderFacts(video, me) {
  document.title = `${video.title} · vodray`;
  $("#video-title").textContent = video.title;
  $("#video-description").textContent = video.description || "";
  const badges = $("#video-badges");
  badges.replaceChildren();
  if (video.visibility === "private") badges.append(h("span", { class: "badge private", text: "Private: only you can see it" }));
  if (me && video.owner === me.id && video.visibility === "public") badges.append(h("span", { class: "badge", text: "Yours · public" }));
  if (video.duration_s) badges.append(h("span", { class: "badge", text: formatTime(video.duration_s) }));
  $("#renditions").replaceChildren(
    ...video.renditions.map((r) =>
      h("li", { text: `${r.name} · ${r.width}×${r.height} · ${Math.round((r.bandwidth || 0) / 1000)} kb/s${r.bytes ? ` · ${formatBytes(r.bytes)}` : ""}` }),
    ),
  );
  if (!video.renditions.length) $("#renditions").replaceChildren(h("li", { class: "muted", text: "None yet" }));
  const downloads = stateBox($("#downloads-status"));
  const items = [];
  if (video.mp3_url) items.push(h("li", {}, downloadLink(video.mp3_url, `${video.id}.mp3`, "Audio (MP3)", video, downloads.error)));
  for (const track of video.subtitles) {
    items.push(h("li", {}, downloadLink(track.url, `${video.id}.${track.lang}.vtt`, `Subtitles: ${track.label} (${track.lang}, WebVTT)`, video, downloads.error)));
  }
  $("#downloads").replaceChildren(...(items.length ? items : [h("li", { class: "muted", text: "Nothing yet" })]));
}

function showProcessing(status) {
  const box = $("#processing");
  box.hidden = false;
  const queued = status.status === "queued";
  const chunks = status.chunks_total ? ` (${status.chunks_done} of ${status.chunks_total} chunks)` : "";
  $("#processing-step").textContent = `${stepName(queued ? "queued" : status.step)}${queued ? "" : chunks}`;
  $("#processing-percent").textContent = `${Math.round((status.progress || 0) * 100)}%`;
  $("#processing-bar").value = status.progress || 0;
}

async function waitUntilReady(video) {
  showProcessing({ status: video.status, step: null, progress: 0 });
  const last = await followStatus(video.id, {
    onStatus: showProcessing,
    onError: (error) => playerState.error(`Progress unavailable: ${error.message} (retrying)`),
  });
  $("#processing").hidden = true;
  playerState.clear();
  if (!last || last.status !== "ready") {
    playerState.error(last && last.error ? `Processing failed: ${last.error}` : "Processing stopped.");
    return null;
  }
  return apiJson(`/v1/videos/${videoId}`);
}

function setUpCopyLink() {
  const button = $("#copy-link");
  button.disabled = false;
  button.addEventListener("click", async () => {
    const url = `${window.location.origin}/watch/${videoId}?t=${Math.floor(videoElement.currentTime)}`;
    try {
      await navigator.clipboard.writeText(url);
      $("#copy-result").textContent = `Copied a link to ${formatTime(videoElement.currentTime)}`;
      $("#copy-fallback").hidden = true;
    } catch {
      // No clipboard access (an insecure origin, a denied permission): show the link to copy.
      $("#copy-fallback").hidden = false;
      $("#copy-fallback-url").value = url;
      $("#copy-fallback-url").select();
      $("#copy-result").textContent = "";
    }
  });
}

function setUpTranscriptToggle() {
  const toggle = $("#transcript-toggle");
  toggle.disabled = false;
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    $("#watch-grid").classList.toggle("with-transcript", open);
    if (open) transcript.open();
    else $("#transcript").hidden = true;
  });
}

function announceResume(at) {
  const restart = h("button", { type: "button", class: "link" }, "Start from the beginning");
  restart.addEventListener("click", () => {
    videoElement.currentTime = 0;
    forget(videoId);
    playerState.clear();
  });
  $("#player-status").replaceChildren(h("p", { class: "notice" }, `Resumed at ${formatTime(at)}. `, restart));
}

async function showStoryboard(video) {
  try {
    await addStoryboard(shakaPlayer, video);
  } catch (error) {
    console.warn("the seek bar has no previews:", error); // the video plays without them
  }
}

async function startPlayer(video) {
  playerState.loading("Loading the player…");
  try {
    const { player } = await createPlayer(videoElement, $("#player"), video);
    shakaPlayer = player;
    player.addEventListener("error", (event) => playerState.error(describeShakaError(event.detail)));
    const linked = linkedTime();
    const resumed = linked === null ? savedTime(video.id, video.duration_s) : null;
    const start = linked ?? resumed ?? 0;
    await player.load(video.manifest_url, start);
    await showStoryboard(video);
    playerState.clear();
    if (resumed !== null) announceResume(resumed);
    rememberPosition(videoElement, video.id);
    transcript = createTranscript({ video, videoElement, player });
    transcript.setTracks(video.subtitles);
    setUpTranscriptToggle();
    setUpCopyLink();
    if (linked !== null) videoElement.play().catch(() => {}); // a shared moment starts playing
  } catch (error) {
    playerState.error(error.code ? describeShakaError(error) : error.message, () => window.location.reload());
  }
}

async function subtitlesChanged(lang) {
  // New or replaced subtitles: reload the manifest where playback is, and the transcript.
  try {
    const latest = await apiJson(`/v1/videos/${videoId}`);
    renderFacts(latest, await signedIn);
    if (shakaPlayer) {
      const at = videoElement.currentTime;
      const playing = !videoElement.paused;
      await shakaPlayer.load(latest.manifest_url, at);
      await showStoryboard(latest);
      if (playing) videoElement.play().catch(() => {});
    }
    if (transcript) transcript.setTracks(latest.subtitles, lang);
  } catch (error) {
    playerState.error(`Could not show the new subtitles: ${error.message}`);
  }
}

async function main() {
  const me = await signedIn;
  pageState.loading("Loading the video…");
  let video;
  try {
    video = await apiJson(`/v1/videos/${videoId}`);
  } catch (error) {
    if (error.status === 404) {
      document.title = "Not found · vodray";
      const parts = [h("h1", { text: "No such video" }), h("p", { text: "This video does not exist, or it is private." })];
      if (!me) parts.push(h("p", {}, "If it is yours, ", h("a", { href: `/signin?next=${encodeURIComponent(window.location.pathname)}` }, "sign in"), " to watch it."));
      $("#watch-status").replaceChildren(h("section", { class: "panel narrow" }, parts));
    } else {
      pageState.error(`Could not load the video: ${error.message}`, main);
    }
    return;
  }
  pageState.clear();
  $("#watch-grid").hidden = false;
  renderFacts(video, me);
  const mine = Boolean(me && video.owner === me.id);
  if (video.status === "failed") {
    playerState.error(`Processing failed: ${video.error || "no reason was given"}`);
  } else if (video.status !== "ready") {
    const ready = await waitUntilReady(video);
    video = ready || (await apiJson(`/v1/videos/${videoId}`).catch(() => video));
    renderFacts(video, me);
  }
  if (mine) ownerTools(video, { onSubtitlesChanged: subtitlesChanged });
  if (video.status === "ready") await startPlayer(video);
}

main();
