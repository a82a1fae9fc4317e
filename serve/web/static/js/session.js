// Who is signed in, for every page, and the one way pages call the API.
//
// The access token lives in this module's memory and nowhere else. The refresh token is an
// HttpOnly cookie (script cannot read it) that the browser sends to /v1/auth/browser/refresh
// alone; a new page calls that route to get an access token. localStorage keeps one hint,
// "this browser signed in" (never a token), so a visitor who never signed in causes no call.
const REFRESH = "/v1/auth/browser/refresh";
const HINT = "vodray:signed-in";

let access = null;
let current = null;
let renewTimer = null;
let pending = null;

export class ApiError extends Error {
  constructor(status, detail, retryAfterS = 0) {
    super(detail);
    this.status = status;
    this.retryAfterS = retryAfterS;
  }
}

export async function errorOf(response) {
  let detail = `the server answered ${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") detail = body.detail;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, detail, Number(response.headers.get("Retry-After")) || 0);
}

function adopt(body) {
  access = body.access_token;
  current = body.user;
  localStorage.setItem(HINT, "1");
  clearTimeout(renewTimer);
  // A minute before the token expires, a new one (a long video outlasts a 15-minute token).
  renewTimer = setTimeout(() => renew().catch(() => {}), Math.max(10, body.expires_in - 60) * 1000);
  return current;
}

function forget() {
  access = null;
  current = null;
  localStorage.removeItem(HINT);
  clearTimeout(renewTimer);
}

function exclusively(task) {
  // Each refresh cookie works once, and the catalog ends the whole login when one is used twice:
  // two tabs refreshing at once must take turns (the second then sends the newer cookie).
  return navigator.locks ? navigator.locks.request("vodray-refresh", task) : task();
}

export function renew() {
  pending ??= exclusively(async () => {
    const response = await fetch(REFRESH, { method: "POST", credentials: "same-origin" });
    if (response.status === 401) {
      forget();
      return null;
    }
    if (!response.ok) throw await errorOf(response);
    return adopt(await response.json());
  }).finally(() => {
    pending = null;
  });
  return pending;
}

/** Resolves to the signed-in user ({id, username}) or null, once the page knows. */
export const ready = localStorage.getItem(HINT) ? renew().catch(() => null) : Promise.resolve(null);

export function user() {
  return current;
}

export function token() {
  return access;
}

/** fetch() with the bearer token; a 401 renews the token once and tries again. */
export async function api(path, options = {}) {
  const send = () => {
    const headers = new Headers(options.headers || {});
    if (access) headers.set("Authorization", `Bearer ${access}`);
    return fetch(path, { ...options, headers });
  };
  let response = await send();
  if (response.status === 401 && access && (await renew())) response = await send();
  return response;
}

/** The JSON answer of api(), or an ApiError carrying the API's detail sentence. */
export async function apiJson(path, options = {}) {
  const response = await api(path, options);
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

export function jsonBody(value, method = "POST") {
  return { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(value) };
}

export async function signIn(username, password) {
  const response = await fetch("/v1/auth/browser/login", {
    ...jsonBody({ username, password }),
    credentials: "same-origin",
  });
  if (!response.ok) throw await errorOf(response);
  return adopt(await response.json());
}

export async function register(username, password) {
  const response = await fetch("/v1/auth/register", jsonBody({ username, password }));
  if (!response.ok) throw await errorOf(response);
  return signIn(username, password);
}

export async function signOut() {
  if (access) {
    const response = await api(REFRESH, { method: "DELETE", credentials: "same-origin" });
    if (!response.ok && response.status !== 401) throw await errorOf(response);
  }
  forget();
}

// Signed out in another tab: this one forgets its token too.
window.addEventListener("storage", (event) => {
  if (event.key === HINT && event.newValue === null && access) {
    forget();
    window.location.reload();
  }
});
