// Sending the file. (Until the resumable tus route lands: one multipart POST /v1/videos with
// upload progress from XMLHttpRequest.)
import { token } from "./session.js";

export async function unfinishedUploads() {
  return [];
}

export function transfer(file, fields, { onProgress, pauseButton }) {
  pauseButton.hidden = true;
  return new Promise((resolve, reject) => {
    const body = new FormData();
    body.append("file", file, file.name);
    for (const [key, value] of Object.entries(fields)) if (value) body.append(key, value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/videos");
    xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
    xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.total));
    xhr.addEventListener("load", () => {
      let answer = {};
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        // keep {}
      }
      if (xhr.status === 202) resolve(answer.id);
      else reject(new Error(answer.detail || `the server answered ${xhr.status}`));
    });
    xhr.addEventListener("error", () => reject(new Error("the connection failed")));
    xhr.send(body);
  });
}
