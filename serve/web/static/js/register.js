// `/register`: create the account, then sign in with it (the same cookie rules as /signin).
import { $, stateBox } from "./dom.js";
import "./frame.js";
import { register } from "./session.js";

const form = $("#register-form");
const state = stateBox($("#register-status"));
const next = document.body.dataset.next || "/";

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!/^[A-Za-z0-9_.-]{3,32}$/.test(username)) {
    state.error("A username is 3 to 32 letters, digits, dots, dashes or underscores.");
    form.username.focus();
    return;
  }
  if (password.length < 8) {
    state.error("The password needs at least 8 characters.");
    form.password.focus();
    return;
  }
  if (password !== form.password2.value) {
    state.error("The two passwords differ.");
    form.password2.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  state.loading("Creating your account…");
  try {
    await register(username, password);
    window.location.assign(next);
  } catch (error) {
    button.disabled = false;
    state.error(error.status === 409 ? `The name ${username} is taken: choose another.` : `Could not create the account: ${error.message}`);
  }
});
