// Shaka Player with its own UI (the pinned npm build, served from /static/vendor/): quality menu
// (Auto or a rendition), subtitles with their labels, speeds 0.5x to 2x, picture-in-picture,
// full screen, keyboard shortcuts anywhere on the page, and storyboard thumbnails on the seek bar.
import { needsToken } from "./media.js";
import { api, errorOf, token } from "./session.js";

export const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];

function uiConfig() {
  return {
    controlPanelElements: ["play_pause", "mute", "volume", "time_and_duration", "spacer", "overflow_menu", "fullscreen"],
    overflowMenuButtons: ["quality", "captions", "language", "playback_rate", "picture_in_picture"],
    playbackRates: SPEEDS,
    textTrackLabelFormat: shaka.ui.Overlay.TrackLabelFormat.LABEL,
    // Shortcuts work wherever the focus is (but in a text field), not only on the player.
    enableKeyboardPlaybackControlsInWindow: true,
    // Nothing from another origin: no Cast sender script, no context menu's frame download, and
    // the classic video picture-in-picture (a document PiP window would take <style> elements).
    castReceiverAppId: "",
    castSenderUrl: "",
    customContextMenu: false,
    documentPictureInPicture: { enabled: false },
    shortcuts: { take_screenshot: "" },
  };
}

/** A sentence for a Shaka error (its code says which part failed). */
export function describeShakaError(error) {
  const code = error && error.code;
  const category = { 1: "the network", 2: "the subtitles", 3: "the media", 4: "the manifest", 5: "streaming", 6: "DRM" }[error && error.category];
  let status = "";
  if (error && error.data && typeof error.data[1] === "number") status = ` (HTTP ${error.data[1]})`;
  return `The video could not be played: a problem with ${category || "the player"}${status}, Shaka error ${code}.`;
}

// Space on a page button or link activates it (Shaka's shortcuts would take it for play/pause
// everywhere on the page); inside the player it stays play/pause.
function keepSpaceForButtons(container) {
  document.addEventListener(
    "keydown",
    (event) => {
      if (event.key !== " ") return;
      const target = event.target;
      if (target instanceof Element && target.closest("button, a, summary, [role=button]") && !container.contains(target)) {
        event.stopPropagation();
      }
    },
    true,
  );
}

/** Attach Shaka with its UI to `video` in `container`, ready to load `video`'s manifest. */
export async function createPlayer(videoElement, container, video) {
  if (!window.shaka || !window.shaka.ui) {
    throw new Error("The player's files are missing on this server (run `make install` there).");
  }
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) {
    throw new Error("This browser cannot play adaptive streams (it has no Media Source Extensions).");
  }
  const player = new shaka.Player();
  // The overlay first: it gives the player its container, so subtitles are drawn by Shaka's own
  // displayer (a <track> with a data: URL otherwise, which the CSP's media-src refuses).
  const ui = new shaka.ui.Overlay(player, container, videoElement);
  ui.configure(uiConfig());
  await player.attach(videoElement);
  player.configure({ streaming: { bufferingGoal: 30, rebufferingGoal: 1 } });
  // A private video's files need the owner's token; a signed link (or a public file) does not.
  player.getNetworkingEngine().registerRequestFilter((type, request) => {
    // Shaka asks a sprite's type with HEAD, which a blob: URL (a private video's sprite) refuses;
    // a GET of the local blob answers its type as well.
    if (request.method === "HEAD" && request.uris.every((uri) => uri.startsWith("blob:"))) request.method = "GET";
    const current = token();
    if (current && request.uris.length && request.uris.every((uri) => needsToken(uri, video))) {
      request.headers.Authorization = `Bearer ${current}`;
    }
  });
  keepSpaceForButtons(container);
  return { player, ui, controls: ui.getControls() };
}

/** Storyboard thumbnails on the seek bar (Shaka shows the tile under the pointer). A private
 * video's sprite would be an <img> without the token: its WebVTT and sprite are fetched with
 * it, and the track names the sprite by a blob: URL instead (after every load of the manifest). */
export async function addStoryboard(player, video) {
  if (!video.storyboard_url) return;
  if (!needsToken(video.storyboard_url, video)) {
    await player.addThumbnailsTrack(video.storyboard_url, "text/vtt");
    return;
  }
  const base = new URL(video.storyboard_url, window.location.href);
  const vtt = await fetchWithToken(base.href, "text");
  const sprites = new Map();
  for (const [, name] of vtt.matchAll(/^([^\s#]+)#xywh=/gm)) {
    if (!sprites.has(name)) sprites.set(name, URL.createObjectURL(await fetchWithToken(new URL(name, base).href, "blob")));
  }
  const named = vtt.replace(/^([^\s#]+)(#xywh=)/gm, (whole, name, rest) => sprites.get(name) + rest);
  await player.addThumbnailsTrack(URL.createObjectURL(new Blob([named], { type: "text/vtt" })), "text/vtt");
}

async function fetchWithToken(url, as) {
  const response = await api(url);
  if (!response.ok) throw await errorOf(response);
  return as === "blob" ? response.blob() : response.text();
}
