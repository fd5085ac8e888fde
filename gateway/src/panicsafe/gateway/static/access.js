// PanicSAFE access page: enrolment from an invitation, login with a second factor.
// Plain DOM code, no framework: the full crisis client is the web/ application.
"use strict";

const view = document.getElementById("view");
const state = { accessToken: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onsubmit" || key === "onclick") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function show(...nodes) {
  view.replaceChildren(...nodes);
  const first = view.querySelector("input, button");
  if (first) first.focus();
}

async function call(path, body, headers = {}) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error((data.error && data.error.message) || "Erreur inattendue.");
  return data;
}

function field(label, name, type = "text", extra = {}) {
  return el("label", { for: name }, label, el("input", { id: name, name, type, required: "", ...extra }));
}

function form(title, fields, action, submitLabel, ...after) {
  const message = el("p", { class: "error", role: "alert" });
  const node = el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      message.textContent = "";
      const values = Object.fromEntries(new FormData(node).entries());
      try { await action(values); } catch (error) { message.textContent = error.message; }
    },
  }, ...fields, message, el("button", { type: "submit" }, submitLabel), ...after);
  return [el("h1", {}, title), node];
}

function sessionStarted(data) {
  state.accessToken = data.accessToken;
  sessionStorage.setItem("ps_csrf", data.csrfToken);
}

function svgFrom(markup) {
  const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
  return document.importNode(doc.documentElement, true);
}

async function invitation(token) {
  let invite;
  try { invite = await call("/auth/invitation", { token }); }
  catch (error) { return show(el("h1", {}, "Invitation"), el("p", { class: "error" }, error.message)); }
  show(...form(
    "Bienvenue",
    [el("p", {}, `${invite.displayName}, vous êtes invité·e par ${invite.organisation}. Votre identifiant : `,
        el("strong", {}, invite.login)),
     field("Choisissez un mot de passe (12 caractères au moins)", "password", "password",
           { autocomplete: "new-password", minlength: "12" }),
     field("Confirmez le mot de passe", "confirm", "password", { autocomplete: "new-password" })],
    async ({ password, confirm }) => {
      if (password !== confirm) throw new Error("Les deux mots de passe diffèrent.");
      const started = await call("/auth/enrol/password", { token, password });
      totpStep(started);
    },
    "Continuer",
  ));
}

function totpStep(started) {
  show(...form(
    "Second facteur",
    [el("p", {}, "Scannez ce code avec votre application d'authentification (FreeOTP, Aegis, Google Authenticator…)."),
     el("div", { class: "qr" }, svgFrom(started.totp.qrSvg)),
     el("p", {}, "Ou saisissez la clé : ", el("code", {}, started.totp.secret)),
     field("Code à 6 chiffres affiché par l'application", "code", "text",
           { inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9 ]{6,7}" })],
    async ({ code }) => {
      const done = await call("/auth/enrol/totp", { enrolment: started.enrolment, code });
      sessionStarted(done);
      recoveryStep(done.recoveryCodes);
    },
    "Activer",
  ));
}

function recoveryStep(codes) {
  show(el("h1", {}, "Codes de secours"),
       el("p", {}, "Chacun remplace une fois votre second facteur. Imprimez-les ou notez-les, puis rangez-les à l'abri."),
       el("div", { class: "codes" }, ...codes.map((c) => el("div", {}, c))),
       el("button", { type: "button", class: "secondary", onclick: () => window.print() }, "Imprimer"),
       el("button", { type: "button", onclick: () => home() }, "J'ai mis mes codes à l'abri"));
}

function login() {
  show(...form(
    "Connexion",
    [field("Identifiant", "login", "text",
           { autocomplete: "username", autocapitalize: "none", placeholder: "prenom.nom@organisation" }),
     field("Mot de passe", "password", "password", { autocomplete: "current-password" })],
    async ({ login: name, password }) => {
      const challenge = await call("/auth/login", { login: name, password });
      secondFactor(challenge);
    },
    "Continuer",
  ));
}

function secondFactor(challenge) {
  const useRecovery = !challenge.methods.includes("totp");
  show(...form(
    "Second facteur",
    [useRecovery ? field("Code de secours", "code") :
       field("Code à 6 chiffres", "code", "text", { inputmode: "numeric", autocomplete: "one-time-code" })],
    async ({ code }) => {
      const path = useRecovery ? "/auth/login/recovery" : "/auth/login/totp";
      sessionStarted(await call(path, { challenge: challenge.challenge, code }));
      home();
    },
    "Se connecter",
    el("button", { type: "button", class: "secondary",
                   onclick: () => secondFactor({ ...challenge, methods: useRecovery ? ["totp"] : ["recovery"] }) },
       useRecovery ? "Utiliser l'application" : "Utiliser un code de secours"),
  ));
}

async function home() {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.accessToken}` },
    body: JSON.stringify({ query: "{ me { displayName login } tenant { name } crises { title status } }" }),
  });
  const { data } = await response.json();
  if (!data) return login();
  show(el("h1", {}, `Bonjour ${data.me.displayName}`),
       el("p", { class: "ok" }, `Connecté·e à ${data.tenant.name} (${data.me.login}).`),
       el("p", {}, data.crises.length ? `Crises suivies : ${data.crises.map((c) => c.title).join(", ")}.`
                                      : "Aucune crise en cours dont vous êtes membre."),
       el("button", { type: "button", class: "secondary", onclick: logout }, "Se déconnecter"));
}

async function logout() {
  await call("/auth/logout", {}, { "X-PanicSAFE-CSRF": sessionStorage.getItem("ps_csrf") || "" }).catch(() => {});
  state.accessToken = null;
  sessionStorage.removeItem("ps_csrf");
  location.hash = "#/login";
  login();
}

function route() {
  const match = location.hash.match(/^#\/invitation\/([A-Za-z0-9_-]{16,200})$/);
  if (match) invitation(match[1]);
  else login();
}

window.addEventListener("hashchange", route);
route();
