// Sending the file: a resumable upload (tus 1.0 at /v1/uploads) with tus-js-client, pinned and
// served from /static/vendor/. The file goes in chunks; a dropped connection is retried from the
// server's offset, and after a reload choosing the same file again continues where it stopped
// (tus-js-client keeps the upload's URL in localStorage, by the file's name, type, size and date).
import { renew, token } from "./session.js";

const MIN_CHUNK = 256 * 1024;
const MAX_CHUNK = 8 * 1024 * 1024;
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000, 20000];

/** About twenty chunks (256 KiB to 8 MiB each): a dropped connection costs at most one. */
export function chunkSize(size) {
  return Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.ceil(size / 20)));
}

function library() {
  if (!window.tus || !window.tus.isSupported) {
    throw new Error("the upload library is missing on this server (run `make install` there)");
  }
  return window.tus;
}

/** The uploads this browser started and did not finish: {name, size, metadata, createdAt}. */
export async function unfinishedUploads() {
  if (!window.tus || !window.tus.defaultOptions.urlStorage) return [];
  const found = await window.tus.defaultOptions.urlStorage.findAllUploads();
  return found.map((item) => ({
    name: (item.metadata && item.metadata.filename) || "a file",
    size: item.size,
    metadata: item.metadata || {},
    createdAt: new Date(item.creationTime),
  }));
}

function statusOf(error) {
  return error && error.originalResponse ? error.originalResponse.getStatus() : 0;
}

function detailOf(error) {
  try {
    const body = JSON.parse(error.originalResponse.getBody());
    if (body && typeof body.detail === "string") return body.detail;
  } catch {
    // no JSON detail: tus-js-client's own message
  }
  return error.message;
}

/** Upload `file` with `fields` (title, description, visibility, translate_to); resolves with the
 * new video's id. `onProgress(sent, total, resumed)` (resumed: an earlier attempt's upload goes on), `onRetry(error)`; `pauseButton` pauses and resumes. */
export async function transfer(file, fields, { onProgress, onRetry, pauseButton }) {
  const tus = library();
  return new Promise((resolve, reject) => {
    let resumed = false;
    const upload = new tus.Upload(file, {
      endpoint: "/v1/uploads",
      chunkSize: chunkSize(file.size),
      retryDelays: RETRY_DELAYS_MS,
      removeFingerprintOnSuccess: true,
      metadata: { filename: file.name, ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v)) },
      onBeforeRequest(request) {
        request.setHeader("Authorization", `Bearer ${token()}`); // the current token, renewed as it goes
      },
      onShouldRetry(error, attempt) {
        const status = statusOf(error);
        if (status === 401) {
          renew().catch(() => {});
          return attempt < 2;
        }
        if (error.originalRequest) onRetry(error);
        return status === 0 || status >= 500 || status === 409 || status === 423 || status === 429;
      },
      onProgress(sent, total) {
        onProgress(sent, total, resumed);
      },
      onError(error) {
        reject(new Error(detailOf(error)));
      },
      onSuccess({ lastResponse }) {
        const id = lastResponse.getHeader("Upload-Video-Id") || (upload.url || "").split("/").pop();
        resolve(id);
      },
    });
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        resumed = true;
      }
      upload.start();
    }, reject);
    pauseButton.hidden = false;
    pauseButton.addEventListener("click", () => {
      if (pauseButton.dataset.paused) {
        delete pauseButton.dataset.paused;
        pauseButton.textContent = "Pause";
        upload.start();
      } else {
        pauseButton.dataset.paused = "1";
        pauseButton.textContent = "Resume";
        upload.abort();
      }
    });
  });
}
