// The shell: who is signed in, where we are (hash routes), the offline banner, the navigation.
import { useEffect, useState } from "preact/hooks";
import { onLink, resetSocket, type LinkState } from "../api/graphql";
import { logout, onSession, refresh } from "../api/http";
import { Enrol, Login } from "./Access";
import { Chat } from "./Chat";
import { CrisisHome } from "./CrisisHome";
import { Crises } from "./Crises";
import { useHash } from "./hooks";
import { Logbook } from "./Logbook";
import { Security } from "./Security";

type Auth = "unknown" | "in" | "out";

export function App() {
  const hash = useHash();
  const [auth, setAuth] = useState<Auth>("unknown");
  const [linkState, setLinkState] = useState<LinkState>("connecting");
  const [offline, setOffline] = useState(!navigator.onLine);

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

  const invitation = hash.match(/^#\/invitation\/([A-Za-z0-9_-]{16,200})$/);
  if (invitation) return <Frame><Enrol token={invitation[1]} /></Frame>;
  if (auth === "unknown") return <Frame><p aria-busy="true">Connexion…</p></Frame>;
  if (auth === "out") return <Frame><Login /></Frame>;

  const crisis = hash.match(/^#\/crise\/([0-9a-f-]{36})(?:\/(messagerie|main-courante))?$/);
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
