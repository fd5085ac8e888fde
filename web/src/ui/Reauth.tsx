// A fresh second factor (five minutes) before a sensitive action: exports, recovery codes.
import { useState } from "preact/hooks";
import { accessToken, post } from "../api/http";
import { message } from "./hooks";

export function needsFreshFactor(error: unknown): boolean {
  return error instanceof Error && /second facteur/i.test(error.message);
}

export function Reauth({ onDone, onCancel }: { onDone: () => void; onCancel: () => void }) {
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="card narrow"
      aria-label="Confirmer votre second facteur"
      onSubmit={async (e) => {
        e.preventDefault();
        const code = String(new FormData(e.currentTarget).get("code") ?? "");
        try {
          const token = await accessToken();
          await post("/auth/reauth", { code }, token ? { Authorization: `Bearer ${token}` } : {});
          onDone();
        } catch (err) {
          setError(message(err));
        }
      }}
    >
      <p>Confirmez votre second facteur pour continuer.</p>
      <label>
        Code à 6 chiffres
        <input name="code" inputMode="numeric" autoComplete="one-time-code" required />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="actions">
        <button type="submit">Confirmer</button>
        <button type="button" class="secondary" onClick={onCancel}>Annuler</button>
      </div>
    </form>
  );
}
