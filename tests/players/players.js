// Drives Shaka Player or hls.js on the page's <video> for tests/integration/test_players.py.
// Each open* function loads a stream with the owner's bearer token on every request and
// answers what the player lists; the test then plays, switches and seeks through `window.vodray`.
"use strict";

window.vodray = { video: document.getElementById("video"), problems: [] };

function note(problem) {
  window.vodray.problems.push(String(problem).slice(0, 500));
}

function within(ms, what, promise) {
  // Every promise the test awaits ends: a player that never answers fails with `what`.
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function textTracksOf(video) {
  // The native text tracks both players feed cues into (Shaka's NativeTextDisplayer, hls.js's
  // renderTextTracksNatively): language, mode and every cue's timing and text.
  return Array.from(video.textTracks, (track) => ({
    language: track.language,
    label: track.label,
    mode: track.mode,
    cues: Array.from(track.cues || [], (cue) => [cue.startTime, cue.endTime, cue.text]),
    active: Array.from(track.activeCues || [], (cue) => cue.text),
  }));
}

function shakaTracks(player) {
  return {
    variants: player.getVariantTracks().map((t) => ({
      id: t.id, width: t.width, height: t.height, bandwidth: t.bandwidth, active: t.active,
    })),
    texts: player.getTextTracks().map((t) => ({
      id: t.id, language: t.language, label: t.label, mimeType: t.mimeType, active: t.active,
    })),
  };
}

async function openShaka(url, token) {
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) {
    throw new Error("Shaka Player says this browser cannot play MSE streams");
  }
  const video = window.vodray.video;
  const player = new shaka.Player();
  await player.attach(video);
  player.addEventListener("error", (event) => note(`shaka error ${event.detail.code}: ${JSON.stringify(event.detail.data)}`));
  player.getNetworkingEngine().registerRequestFilter((type, request) => {
    request.headers.Authorization = `Bearer ${token}`;
  });
  // Renditions are switched by the test, not by bandwidth estimates.
  player.configure({ abr: { enabled: false } });
  try {
    await player.load(url);
  } catch (error) {  // a shaka.util.Error says little by itself: give its code and data
    throw new Error(`Shaka could not load ${url}: error ${error.code} ${JSON.stringify(error.data)}`);
  }
  window.vodray.shaka = player;
  window.vodray.tracks = () => ({ ...shakaTracks(player), native: textTracksOf(video) });
  window.vodray.selectHeight = (height) => {
    const track = player.getVariantTracks().find((t) => t.height === height);
    player.selectVariantTrack(track, /* clearBuffer */ true);
  };
  window.vodray.selectLanguage = (language) => {
    player.selectTextTrack(player.getTextTracks().find((t) => t.language === language));
  };
  return window.vodray.tracks();
}

function openHls(url, token) {
  if (!Hls.isSupported()) {
    return Promise.reject(new Error("hls.js says this browser cannot play MSE streams"));
  }
  const video = window.vodray.video;
  const hls = new Hls({
    xhrSetup: (xhr) => xhr.setRequestHeader("Authorization", `Bearer ${token}`),
    renderTextTracksNatively: true,
    subtitleDisplay: true,
    capLevelToPlayerSize: false,
  });
  window.vodray.hls = hls;
  const tracks = () => ({
    levels: hls.levels.map((l, index) => ({ index, width: l.width, height: l.height, bitrate: l.bitrate })),
    currentLevel: hls.currentLevel,
    subtitleTracks: hls.subtitleTracks.map((t) => ({ id: t.id, lang: t.lang, name: t.name })),
    subtitleTrack: hls.subtitleTrack,
    inManifest: window.vodray.manifestSubtitles,
    native: textTracksOf(video),
  });
  window.vodray.tracks = tracks;
  window.vodray.selectHeight = (height) => {
    hls.currentLevel = hls.levels.findIndex((l) => l.height === height);
  };
  window.vodray.selectLanguage = (language) => {
    hls.subtitleTrack = hls.subtitleTracks.findIndex((t) => t.lang === language);
  };
  return new Promise((resolve, reject) => {
    hls.on(Hls.Events.ERROR, (event, data) => {
      // Not a refused stream: a non-fatal stall (buffer*) is a busy machine decoding slowly, and
      // "aborted" is hls.js dropping its own request when the test switches level or seeks.
      const stalled = data.type === Hls.ErrorTypes.MEDIA_ERROR && data.details.startsWith("buffer");
      if (!data.fatal && (stalled || data.details === Hls.ErrorDetails.INTERNAL_ABORTED)) return;
      note(`hls.js ${data.fatal ? "fatal " : ""}error ${data.type}/${data.details}: ${data.reason || data.error || ""} ${data.url || (data.context && data.context.url) || ""}`);
      if (data.fatal) reject(new Error(`hls.js: ${data.details}`));
    });
    // hls.subtitleTracks lists the tracks of the playing level's SUBTITLES group, known once
    // the first level is chosen; the manifest's own list comes with MANIFEST_PARSED.
    hls.on(Hls.Events.MANIFEST_PARSED, (event, data) => {
      window.vodray.manifestSubtitles = data.subtitleTracks.map((t) => ({ lang: t.lang, name: t.name, groupId: t.groupId }));
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => resolve(tracks()));
    hls.loadSource(url);
    hls.attachMedia(video);
  });
}

window.vodray.within = within;
window.vodray.play = () => window.vodray.video.play();
window.vodray.openShaka = openShaka;
window.vodray.openHls = openHls;
