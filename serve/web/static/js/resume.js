// Where to start a video: `?t=SECONDS` if the address has it, else where this browser left it
// (localStorage), unless that was in the first or the last few seconds.
const KEY = (id) => `vodray:resume:${id}`;
export const RESUME_TAIL_S = 5;
const RESUME_MIN_S = 3;
const SAVE_EVERY_MS = 1000;

export function linkedTime() {
  const raw = new URLSearchParams(window.location.search).get("t");
  const seconds = raw === null ? NaN : Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

export function savedTime(id, durationS) {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY(id)) || "null");
    const seconds = saved && Number(saved.t);
    if (!Number.isFinite(seconds) || seconds < RESUME_MIN_S) return null;
    if (durationS && seconds > durationS - RESUME_TAIL_S) return null;
    return seconds;
  } catch {
    return null;
  }
}

export function forget(id) {
  localStorage.removeItem(KEY(id));
}

/** Keep `video`'s position for `id` as it plays (at most once a second), on pause and on leaving. */
export function rememberPosition(videoElement, id) {
  let last = 0;
  let armed = false; // not before playback has started where it should (a load starts at 0)
  videoElement.addEventListener("playing", () => { armed = true; }, { once: true });
  const save = () => {
    if (!armed) return;
    if (videoElement.ended) {
      forget(id);
      return;
    }
    localStorage.setItem(KEY(id), JSON.stringify({ t: Math.round(videoElement.currentTime * 10) / 10, at: Date.now() }));
  };
  videoElement.addEventListener("timeupdate", () => {
    if (Date.now() - last < SAVE_EVERY_MS || videoElement.seeking) return;
    last = Date.now();
    save();
  });
  videoElement.addEventListener("pause", save);
  videoElement.addEventListener("ended", () => forget(id));
  window.addEventListener("pagehide", save);
}
