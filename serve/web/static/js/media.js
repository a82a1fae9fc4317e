// Media of a video the page shows: posters, downloads. A public video's files are plain links;
// a private one's need the owner's bearer token (an <img> or <a> cannot send it), so they are
// fetched with it and shown from a blob: URL, unless the API handed out a signed link.
import { h, formatTime } from "./dom.js";
import { api, errorOf } from "./session.js";

export const STEP_NAMES = {
  queued: "Waiting for a free worker",
  upload: "Uploading",
  probe: "Reading the file",
  encode: "Encoding the renditions",
  package: "Packaging and publishing",
  storyboard: "Making seek-bar previews",
  subtitles: "Subtitles",
  ready: "Ready",
  failed: "Failed",
};

export function stepName(step) {
  return STEP_NAMES[step] || (step ? String(step) : "Processing");
}

/** True when the URL needs the bearer token: this origin's /media/{id}/ (not a signed link). */
export function needsToken(url, video) {
  if (video.visibility === "public") return false;
  const parsed = new URL(url, window.location.href);
  return parsed.origin === window.location.origin && parsed.pathname.startsWith(`/media/${video.id}/`);
}

async function blobUrl(url) {
  const response = await api(url);
  if (!response.ok) throw await errorOf(response);
  return URL.createObjectURL(await response.blob());
}

/** The 16:9 thumbnail of a video: its poster (once ready), its duration, or its state. */
export function thumbnail(video) {
  const box = h("div", { class: "thumb" });
  if (video.status === "ready" && video.poster_url) {
    const img = h("img", { alt: "", loading: "lazy", width: 320, height: 180 });
    box.append(img);
    if (needsToken(video.poster_url, video)) {
      blobUrl(video.poster_url)
        .then((url) => { img.src = url; })
        .catch(() => { img.remove(); box.append("No preview"); });
    } else {
      img.src = video.poster_url;
    }
  } else {
    box.append(video.status === "failed" ? "Failed" : "Processing…");
  }
  if (video.duration_s) box.append(h("span", { class: "duration", text: formatTime(video.duration_s) }));
  return box;
}

/** A download link; for a private file, a button that fetches it with the token and saves it. */
export function downloadLink(url, fileName, label, video, onError) {
  if (!needsToken(url, video)) return h("a", { href: url, download: fileName }, label);
  const button = h("button", { type: "button", class: "link" }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const href = await blobUrl(url);
      const anchor = h("a", { href, download: fileName });
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(href), 60_000);
    } catch (error) {
      onError(`Could not download ${fileName}: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}
