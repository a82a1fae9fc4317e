// `/signin`: the refresh token goes into an HttpOnly cookie, the access token stays in memory.
import { $, stateBox } from "./dom.js";
import { signedIn } from "./frame.js";
import { signIn } from "./session.js";

const form = $("#signin-form");
const state = stateBox($("#signin-status"));
const next = document.body.dataset.next || "/";

if (new URLSearchParams(window.location.search).has("registered")) {
  $("#signin-note").textContent = "Your account is ready: sign in.";
  $("#signin-note").hidden = false;
}

signedIn.then((who) => {
  if (who) state.note(`You are signed in as ${who.username}.`);
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    state.error("Enter your username and password.");
    (username ? form.password : form.username).focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  state.loading("Signing in…");
  try {
    await signIn(username, password);
    window.location.assign(next);
  } catch (error) {
    button.disabled = false;
    state.error(error.status === 401 ? "Wrong username or password." : `Could not sign in: ${error.message}`);
    form.password.select();
  }
});
