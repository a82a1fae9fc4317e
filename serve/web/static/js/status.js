// Following a video's processing: the status route's long poll (?wait=) for a signed-in caller,
// a plain poll every few seconds otherwise. The API holds at most 4 long polls per user: a page
// keeps 2 at a time and hands the slots round, so a list of many processing videos still moves.
import { apiJson, token } from "./session.js";
import { sleep } from "./dom.js";

const WAIT_S = 15;
const SLOTS = 2;
let free = SLOTS;
const queue = [];

async function slot() {
  if (free > 0) {
    free -= 1;
    return;
  }
  await new Promise((resolve) => queue.push(resolve));
}

function release() {
  const next = queue.shift();
  if (next) next();
  else free += 1;
}

/** Calls onStatus(status) on every change until the video is ready or failed (resolves with
 * the last status), onError(error) when a poll fails (it keeps trying), stops on signal.abort(). */
export async function followStatus(videoId, { onStatus, onError = () => {}, signal } = {}) {
  let last = null;
  while (!signal?.aborted) {
    const longPoll = Boolean(token());
    if (longPoll) await slot();
    try {
      const wait = longPoll ? WAIT_S : 0;
      const status = await apiJson(`/v1/videos/${videoId}/status?wait=${wait}`, { signal });
      last = status;
      onStatus(status);
      if (status.status === "ready" || status.status === "failed") return status;
      if (!longPoll) await sleep(3000);
    } catch (error) {
      if (signal?.aborted) break;
      onError(error);
      if (error.status === 404) return last; // deleted, or no longer visible
      await sleep(error.status === 429 ? Math.max(1, error.retryAfterS) * 1000 : 4000);
    } finally {
      if (longPoll) release();
    }
  }
  return last;
}
