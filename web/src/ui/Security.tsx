// One's own security: active sessions (revoke), factors, recovery codes.
import { useState } from "preact/hooks";
import { gql } from "../api/graphql";
import type { MeQuery, RecoveryCodesMutation, SessionsQuery } from "../api/generated";
import { RECOVERY_CODES, REMOVE_PASSKEY, REVOKE_OTHERS, REVOKE_SESSION, SESSIONS, ME } from "../api/operations";
import { dateTime } from "../lib/clock";
import { message, useQuery } from "./hooks";
import { needsFreshFactor, Reauth } from "./Reauth";

export function Security() {
  const me = useQuery<MeQuery>(ME);
  const sessions = useQuery<SessionsQuery>(SESSIONS);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [reauth, setReauth] = useState<(() => void) | null>(null);
  const [error, setError] = useState<string | null>(null);

  const guarded = async (action: () => Promise<void>) => {
    try {
      setError(null);
      await action();
    } catch (err) {
      if (needsFreshFactor(err)) setReauth(() => () => void guarded(action));
      else setError(message(err));
    }
  };

  return (
    <section data-testid="security">
      <h1>Sécurité</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {reauth && (
        <Reauth
          onDone={() => {
            const again = reauth;
            setReauth(null);
            again();
          }}
          onCancel={() => setReauth(null)}
        />
      )}
      <section class="card">
        <h2>Sessions actives</h2>
        <ul data-testid="sessions">
          {sessions.data?.sessions.map((s) => (
            <li key={s.id}>
              {s.current ? <strong>Cette session</strong> : "Autre session"} — ouverte le {dateTime(s.createdAt)}, vue le{" "}
              {dateTime(s.lastSeenAt)}
              {s.userAgent && <span class="muted small"> · {s.userAgent.slice(0, 60)}</span>}{" "}
              {!s.current && (
                <button
                  type="button"
                  class="link"
                  onClick={() => void guarded(async () => {
                    await gql(REVOKE_SESSION, { id: s.id });
                    await sessions.reload();
                  })}
                >
                  Révoquer
                </button>
              )}
            </li>
          ))}
        </ul>
        <button
          type="button"
          class="secondary"
          onClick={() => void guarded(async () => {
            await gql(REVOKE_OTHERS);
            await sessions.reload();
          })}
        >
          Révoquer toutes les autres sessions
        </button>
      </section>
      <section class="card">
        <h2>Facteurs</h2>
        {me.data && (
          <ul>
            <li>Application d'authentification : {me.data.me.factors.totpEnabled ? "activée" : "non activée"}</li>
            <li>Codes de secours restants : {me.data.me.factors.recoveryCodesLeft}</li>
            {me.data.me.factors.passkeys.map((p) => (
              <li key={p.id}>
                Clé d'accès « {p.name} » (ajoutée le {dateTime(p.createdAt)}){" "}
                <button
                  type="button"
                  class="link"
                  onClick={() => void guarded(async () => {
                    await gql(REMOVE_PASSKEY, { id: p.id });
                    await me.reload();
                  })}
                >
                  Retirer
                </button>
              </li>
            ))}
          </ul>
        )}
        <button
          type="button"
          onClick={() => void guarded(async () => {
            setCodes((await gql<RecoveryCodesMutation>(RECOVERY_CODES)).regenerateRecoveryCodes);
            await me.reload();
          })}
        >
          Nouveaux codes de secours
        </button>
        {codes && (
          <div>
            <p>Les anciens codes ne valent plus. Imprimez ou notez ceux-ci :</p>
            <ol class="codes">
              {codes.map((c) => (
                <li key={c}><code>{c}</code></li>
              ))}
            </ol>
            <button type="button" class="secondary" onClick={() => window.print()}>Imprimer</button>
          </div>
        )}
      </section>
    </section>
  );
}
