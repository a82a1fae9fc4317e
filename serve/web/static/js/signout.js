// `/signout`: says whether this browser is signed in, and signs out (the header's button lands here).
import { $, stateBox } from "./dom.js";
import { signedIn } from "./frame.js";
import { signOut } from "./session.js";

const state = stateBox($("#signout-status"));

function show(who) {
  $("#signout-in").hidden = !who;
  $("#signout-out").hidden = Boolean(who);
  if (who) $("#signout-name").textContent = who.username;
}

state.loading("Checking…");
signedIn.then((who) => {
  state.clear();
  show(who);
});

$("#signout-button").addEventListener("click", async () => {
  state.loading("Signing out…");
  try {
    await signOut();
    state.clear();
    window.location.assign("/signout");
  } catch (error) {
    state.error(`Could not sign out: ${error.message}`);
  }
});
