// The shell: who is signed in, where we are (hash routes), the offline banner, the navigation.
import { useEffect, useState } from "preact/hooks";
import { onLink, resetSocket, type LinkState } from "../api/graphql";
import { logout, onSession, refresh } from "../api/http";
import { onUnreadMentions, pageTitle } from "../lib/title";
import { Enrol, Login } from "./Access";
import { Chat } from "./Chat";
import { CrisisHome } from "./CrisisHome";
import { Crises } from "./Crises";
import { useHash } from "./hooks";
import { Logbook } from "./Logbook";
import { useUnreadMentionsOf } from "./mentions";
import { Security } from "./Security";

type Auth = "unknown" | "in" | "out";

const INVITATION = /^#\/invitation\/([A-Za-z0-9_-]{16,200})$/;
const CRISIS = /^#\/crise\/([0-9a-f-]{36})(?:\/(messagerie|main-courante))?$/;

/** The screen's name, for the tab's title. */
function sectionOf(hash: string, auth: Auth): string | null {
  if (INVITATION.test(hash)) return "Invitation";
  if (auth !== "in") return auth === "out" ? "Connexion" : null;
  const crisis = hash.match(CRISIS);
  if (!crisis) return hash === "#/securite" ? "Sécurité" : "Crises";
  if (crisis[2] === "messagerie") return "Messagerie";
  return crisis[2] === "main-courante" ? "Main courante" : "Accueil de crise";
}

export function App() {
  const hash = useHash();
  const [auth, setAuth] = useState<Auth>("unknown");
  const [linkState, setLinkState] = useState<LinkState>("connecting");
  const [offline, setOffline] = useState(!navigator.onLine);
  const [mentions, setMentions] = useState(0);

  useEffect(() => onSession((signedIn) => setAuth(signedIn ? "in" : "out")), []);
  useEffect(() => {
    void refresh().then((ok) => setAuth(ok ? "in" : "out"));
  }, []);
  useEffect(() => onLink(setLinkState), []);
  useEffect(() => {
    const down = () => setOffline(true);
    const up = () => setOffline(false);
    window.addEventListener("offline", down);
    window.addEventListener("online", up);
    return () => {
      window.removeEventListener("offline", down);
      window.removeEventListener("online", up);
    };
  }, []);

  useEffect(() => onUnreadMentions(setMentions), []);

  const invitation = hash.match(INVITATION);
  const crisis = hash.match(CRISIS);
  const signedIn = !invitation && auth === "in";
  // The chat counts its own unread mentions, live; the other screens of a crisis ask the server.
  useUnreadMentionsOf(signedIn && crisis && crisis[2] !== "messagerie" ? crisis[1] : null);
  const title = pageTitle(sectionOf(hash, auth), signedIn && crisis ? mentions : 0);
  useEffect(() => {
    document.title = title;
  }, [title]);

  if (invitation) return <Frame><Enrol token={invitation[1]} /></Frame>;
  if (auth === "unknown") return <Frame><p aria-busy="true">Connexion…</p></Frame>;
  if (auth === "out") return <Frame><Login /></Frame>;

  let screen;
  if (crisis && crisis[2] === "messagerie") screen = <Chat crisisId={crisis[1]} />;
  else if (crisis && crisis[2] === "main-courante") screen = <Logbook crisisId={crisis[1]} />;
  else if (crisis) screen = <CrisisHome crisisId={crisis[1]} />;
  else if (hash === "#/securite") screen = <Security />;
  else screen = <Crises />;

  const down = offline || linkState === "offline";
  return (
    <Frame>
      {down && (
        <div class="banner offline" role="status" data-testid="offline-banner">
          Hors connexion : vos messages sont gardés et partiront au retour du réseau.
        </div>
      )}
      <nav class="top" aria-label="Navigation principale">
        <a href="#/" class="brand">PanicSAFE</a>
        {crisis && (
          <>
            <a href={`#/crise/${crisis[1]}`} aria-current={!crisis[2] ? "page" : undefined}>Accueil de crise</a>
            <a href={`#/crise/${crisis[1]}/messagerie`} aria-current={crisis[2] === "messagerie" ? "page" : undefined}>
              Messagerie
            </a>
            <a href={`#/crise/${crisis[1]}/main-courante`} aria-current={crisis[2] === "main-courante" ? "page" : undefined}>
              Main courante
            </a>
          </>
        )}
        <span class="spacer" />
        <a href="#/securite">Sécurité</a>
        <button
          type="button"
          class="link"
          onClick={async () => {
            await logout();
            await resetSocket();
            location.hash = "#/";
          }}
        >
          Se déconnecter
        </button>
      </nav>
      {screen}
    </Frame>
  );
}

function Frame({ children }: { children: preact.ComponentChildren }) {
  return <main class="frame">{children}</main>;
}
