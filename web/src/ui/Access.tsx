// Enrolment from an invitation (password, then an authenticator app with a QR code or a passkey, then
// recovery codes to keep) and login (password, then a code, a recovery code, or a passkey).
import { useEffect, useState } from "preact/hooks";
import { ApiError, post, startSession, type SessionBody } from "../api/http";
import { message, useAction } from "./hooks";
import { Svg } from "./Svg";

interface Invitation {
  displayName: string;
  organisation: string;
  login: string;
}

interface Started {
  enrolment: string;
  login: string;
  totp: { secret: string; uri: string; qrSvg: string };
}

type Enrolled = SessionBody & { recoveryCodes: string[] };

const passkeysSupported = typeof window !== "undefined" && "PublicKeyCredential" in window;

async function createPasskey(options: unknown): Promise<unknown> {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options as PublicKeyCredentialCreationOptionsJSON);
  const credential = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new ApiError("invalid", "Clé d'accès non créée.");
  return credential.toJSON();
}

async function usePasskey(options: unknown): Promise<unknown> {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options as PublicKeyCredentialRequestOptionsJSON);
  const credential = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new ApiError("invalid", "Clé d'accès non utilisée.");
  return credential.toJSON();
}

export function Enrol({ token }: { token: string }) {
  const [invite, setInvite] = useState<Invitation | null>(null);
  const [started, setStarted] = useState<Started | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [code, setCode] = useState("");
  const [dead, setDead] = useState(false);
  const { error, setError, busy, run } = useAction();

  useEffect(() => {
    post<Invitation>("/auth/invitation", { token }).then(setInvite, (e: unknown) => {
      if (e instanceof ApiError && e.code === "not_found") setDead(true);
      else setError(message(e));
    });
  }, [token]);

  if (dead) return <DeadInvitation />;

  const finish = (done: Enrolled) => {
    setCodes(done.recoveryCodes);
    // The session starts once the codes are put away (startSession below).
    pendingSession = done;
  };

  if (codes) {
    return (
      <section class="card narrow" key="codes">
        <h1>Codes de secours</h1>
        <p>Chacun remplace une fois votre second facteur. Imprimez-les ou notez-les, puis rangez-les à l'abri.</p>
        <ol class="codes" data-testid="recovery-codes">
          {codes.map((c) => (
            <li key={c}><code>{c}</code></li>
          ))}
        </ol>
        <div class="actions">
          <button type="button" class="secondary" onClick={() => window.print()}>Imprimer</button>
          <button
            type="button"
            onClick={() => {
              if (pendingSession) startSession(pendingSession);
              pendingSession = null;
              location.hash = "#/";
            }}
          >
            J'ai mis mes codes à l'abri
          </button>
        </div>
      </section>
    );
  }

  if (started) {
    // Keyed: the step before had password fields, and a reused input would show the password in clear.
    return (
      <section class="card narrow" key="totp">
        <h1>Second facteur</h1>
        <p>Scannez ce code avec votre application d'authentification (FreeOTP, Aegis, Google Authenticator…).</p>
        <Svg class="qr" markup={started.totp.qrSvg} label="QR code de l'application d'authentification" />
        <p>
          Ou saisissez la clé : <code data-testid="totp-secret">{started.totp.secret}</code>
        </p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => finish(await post<Enrolled>("/auth/enrol/totp", { enrolment: started.enrolment, code })));
          }}
        >
          <label>
            Code à 6 chiffres affiché par l'application
            <input
              name="code"
              type="text"
              value={code}
              onInput={(e) => setCode((e.target as HTMLInputElement).value)}
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="[0-9 ]{6,7}"
              maxLength={7}
              required
            />
          </label>
          {error && <p class="error" role="alert">{error}</p>}
          <button type="submit" disabled={busy}>Activer</button>
        </form>
        {passkeysSupported && (
          <p>
            <button
              type="button"
              class="secondary"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  const options = await post<unknown>("/auth/enrol/passkey/options", { enrolment: started.enrolment });
                  const credential = await createPasskey(options);
                  finish(await post<Enrolled>("/auth/enrol/passkey", { enrolment: started.enrolment, credential }));
                })
              }
            >
              Utiliser plutôt une clé d'accès (passkey)
            </button>
          </p>
        )}
      </section>
    );
  }

  return (
    <section class="card narrow" key="password">
      <h1>Bienvenue</h1>
      {!invite && !error && <p aria-busy="true">Lecture de l'invitation…</p>}
      {invite && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const form = new FormData(e.currentTarget);
            const password = String(form.get("password") ?? "");
            if (password !== String(form.get("confirm") ?? "")) {
              setError("Les deux mots de passe diffèrent.");
              return;
            }
            void run(async () => setStarted(await post<Started>("/auth/enrol/password", { token, password })));
          }}
        >
          <p>
            {invite.displayName}, vous êtes invité·e par {invite.organisation}. Votre identifiant :{" "}
            <strong data-testid="login">{invite.login}</strong> (à saisir en entier pour vous connecter)
          </p>
          <label>
            Choisissez un mot de passe (12 caractères au moins)
            <input name="password" type="password" autoComplete="new-password" minLength={12} required />
          </label>
          <label>
            Confirmez le mot de passe
            <input name="confirm" type="password" autoComplete="new-password" required />
          </label>
          {error && <p class="error" role="alert">{error}</p>}
          <button type="submit" disabled={busy}>Continuer</button>
        </form>
      )}
      {!invite && error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}

let pendingSession: Enrolled | null = null;

/** An invitation link that has served, expired or been revoked: say so, and lead to the login page. */
function DeadInvitation() {
  return (
    <section class="card narrow" key="dead" data-testid="dead-invitation">
      <h1>Ce lien d'invitation n'est plus valable</h1>
      <p>
        Il a déjà servi à créer un compte, il a expiré ou il a été révoqué. Un
        lien d'invitation ne sert qu'une fois.
      </p>
      <p>
        Si vous avez déjà créé votre compte avec ce lien, connectez-vous avec votre identifiant et votre mot de passe.
        Sinon, demandez une nouvelle invitation à la personne qui vous a invité·e.
      </p>
      <div class="actions">
        <a class="button" href="#/">Aller à la page de connexion</a>
      </div>
    </section>
  );
}

interface Challenge {
  challenge: string;
  methods: string[];
}

export function Login() {
  const [challenge, setChallenge] = useState<Challenge | null>(null);
  const [recovery, setRecovery] = useState(false);
  const [code, setCode] = useState("");
  const { error, busy, run } = useAction();

  const passkey = (challengeToken: string | null) =>
    run(async () => {
      const options = await post<{ challenge: string; publicKey: unknown }>("/auth/login/passkey/options", {
        challenge: challengeToken,
      });
      const credential = await usePasskey(options.publicKey);
      startSession(await post<SessionBody>("/auth/login/passkey", { challenge: options.challenge, credential }));
    });

  if (challenge) {
    const useRecovery = recovery || !challenge.methods.includes("totp");
    // Keyed: the step before had the password field, which must not come back as the code field.
    return (
      <section class="card narrow" key="second-factor">
        <h1>Second facteur</h1>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const path = useRecovery ? "/auth/login/recovery" : "/auth/login/totp";
            void run(async () => startSession(await post<SessionBody>(path, { challenge: challenge.challenge, code })));
          }}
        >
          <label>
            {useRecovery ? "Code de secours" : "Code à 6 chiffres de votre application"}
            <input
              name="code"
              type="text"
              required
              value={code}
              onInput={(e) => setCode((e.target as HTMLInputElement).value)}
              autoComplete="one-time-code"
              autoCapitalize="none"
              inputMode={useRecovery ? "text" : "numeric"}
              key={useRecovery ? "recovery" : "totp"}
            />
          </label>
          {error && <p class="error" role="alert">{error}</p>}
          <button type="submit" disabled={busy}>Se connecter</button>
        </form>
        <div class="actions">
          <button
            type="button"
            class="link"
            onClick={() => {
              setRecovery(!useRecovery);
              setCode("");
            }}
          >
            {useRecovery ? "Utiliser l'application" : "Utiliser un code de secours"}
          </button>
          {passkeysSupported && challenge.methods.includes("passkey") && (
            <button type="button" class="link" onClick={() => void passkey(challenge.challenge)}>
              Utiliser une clé d'accès
            </button>
          )}
        </div>
      </section>
    );
  }

  return (
    <section class="card narrow" key="password">
      <h1>Connexion</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const form = new FormData(e.currentTarget);
          void run(async () =>
            setChallenge(
              await post<Challenge>("/auth/login", { login: form.get("login"), password: form.get("password") }),
            ),
          );
        }}
      >
        <label>
          Identifiant
          <input
            name="login"
            autoComplete="username"
            autoCapitalize="none"
            placeholder="prenom.nom@organisation"
            required
          />
        </label>
        <label>
          Mot de passe
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>Continuer</button>
      </form>
      {passkeysSupported && (
        <p>
          <button type="button" class="link" onClick={() => void passkey(null)}>
            Se connecter avec une clé d'accès
          </button>
        </p>
      )}
    </section>
  );
}
