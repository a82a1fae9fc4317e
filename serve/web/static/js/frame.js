// What every page shares: the account part of the header, filled once the page knows who is
// signed in. Page modules await `signedIn` before asking the API for anything private.
import { h } from "./dom.js";
import { ready, signOut } from "./session.js";

function here() {
  return window.location.pathname + window.location.search;
}

function renderAccount(who) {
  const nav = document.getElementById("account");
  if (!nav) return;
  if (!who) {
    const next = encodeURIComponent(here());
    nav.replaceChildren(
      h("a", { href: `/signin?next=${next}` }, "Sign in"),
      h("a", { class: "button secondary", href: `/register?next=${next}` }, "Register"),
    );
    return;
  }
  const out = h("button", { type: "button", class: "secondary", id: "signout" }, "Sign out");
  out.addEventListener("click", async () => {
    out.disabled = true;
    out.textContent = "Signing out…";
    try {
      await signOut();
      window.location.assign("/signout");
    } catch (error) {
      out.disabled = false;
      out.textContent = "Sign out";
      out.title = `Could not sign out: ${error.message}`;
      window.alert(`Could not sign out: ${error.message}`);
    }
  });
  nav.replaceChildren(
    h("a", { class: "button", href: "/upload" }, "Upload"),
    h("span", { class: "who", title: "Signed in as" }, h("span", { class: "visually-hidden" }, "Signed in as "), who.username),
    out,
  );
}

/** The signed-in user ({id, username}) or null; the header shows it. */
export const signedIn = ready.then((who) => {
  renderAccount(who);
  return who;
});
