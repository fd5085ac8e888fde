// The crises one belongs to, and the declaration of a new one (tenant administrators).
import { useState } from "preact/hooks";
import { gql } from "../api/graphql";
import type {
  CellKind,
  CrisesQuery,
  DeclareMutation,
  EstablishmentsQuery,
  MeQuery,
  Severity,
} from "../api/generated";
import { CRISES, DECLARE, ESTABLISHMENTS, ME } from "../api/operations";
import { sinceT0 } from "../lib/clock";
import { CELL, ROLE, SEVERITY, STATUS } from "../lib/labels";
import { message, useNow, useQuery } from "./hooks";

const CELLS: CellKind[] = ["DECISION", "IT_OPERATIONS", "COMMUNICATION", "MEDICAL_CONTINUITY", "LEGAL_DPO"];
const SEVERITIES: Severity[] = ["MINOR", "SIGNIFICANT", "MAJOR", "CRITICAL"];

function localNow(): string {
  const now = new Date();
  now.setMinutes(now.getMinutes() - now.getTimezoneOffset());
  return now.toISOString().slice(0, 16);
}

export function Crises() {
  const me = useQuery<MeQuery>(ME);
  const crises = useQuery<CrisesQuery>(CRISES);
  const now = useNow();
  const [declaring, setDeclaring] = useState(false);
  const admin = me.data?.me.tenantRole === "ADMIN";

  return (
    <section>
      <header class="row">
        <h1>Crises</h1>
        {me.data && <span class="muted">{me.data.me.displayName} — {me.data.tenant.name}</span>}
      </header>
      {crises.error && <p class="error" role="alert">{crises.error}</p>}
      {crises.data && crises.data.crises.length === 0 && <p>Aucune crise dont vous êtes membre.</p>}
      <ul class="cards" data-testid="crisis-list">
        {crises.data?.crises.map((c) => (
          <li key={c.id} class={`card ${c.mode === "EXERCISE" ? "exercise" : ""}`}>
            <a href={`#/crise/${c.id}`}>
              <strong>{c.title}</strong>
            </a>
            <div class="muted">
              {c.mode === "EXERCISE" && <span class="tag exercise">EXERCICE</span>} {STATUS[c.status]} · gravité{" "}
              {SEVERITY[c.severity].toLowerCase()} · {sinceT0(c.t0, now)} · {ROLE[c.myRole]}
            </div>
          </li>
        ))}
      </ul>
      {admin && !declaring && (
        <button type="button" onClick={() => setDeclaring(true)}>Déclarer une crise</button>
      )}
      {admin && declaring && <Declare onCancel={() => setDeclaring(false)} />}
    </section>
  );
}

function Declare({ onCancel }: { onCancel: () => void }) {
  const establishments = useQuery<EstablishmentsQuery>(ESTABLISHMENTS);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  return (
    <form
      class="card"
      aria-label="Déclarer une crise"
      onSubmit={async (e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget);
        const t0 = new Date(String(form.get("t0")));
        setBusy(true);
        setError(null);
        try {
          const done = await gql<DeclareMutation>(DECLARE, {
            input: {
              title: form.get("title"),
              severity: form.get("severity"),
              mode: form.get("exercise") ? "EXERCISE" : "REAL",
              t0: t0.toISOString(),
              establishmentIds: form.getAll("establishment"),
              cells: form.getAll("cell"),
            },
          });
          location.hash = `#/crise/${done.declareCrisis.id}`;
        } catch (err) {
          setError(message(err));
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2>Déclarer une crise</h2>
      <label>
        Intitulé
        <input name="title" required maxLength={200} placeholder="Rançongiciel : SI hors service" />
      </label>
      <label>
        T0 (prise de connaissance)
        <input name="t0" type="datetime-local" required value={localNow()} />
      </label>
      <label>
        Gravité
        <select name="severity" required>
          {SEVERITIES.map((s) => (
            <option value={s} selected={s === "MAJOR"} key={s}>{SEVERITY[s]}</option>
          ))}
        </select>
      </label>
      <fieldset>
        <legend>Établissements touchés</legend>
        {establishments.data?.establishments.map((e) => (
          <label class="check" key={e.id}>
            <input type="checkbox" name="establishment" value={e.id} /> {e.name}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>Cellules</legend>
        {CELLS.map((c) => (
          <label class="check" key={c}>
            <input type="checkbox" name="cell" value={c} checked /> {CELL[c]}
          </label>
        ))}
      </fieldset>
      <label class="check">
        <input type="checkbox" name="exercise" value="1" /> Exercice (rien n'apparaîtra dans une crise réelle)
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="actions">
        <button type="submit" disabled={busy}>Déclarer</button>
        <button type="button" class="secondary" onClick={onCancel}>Annuler</button>
      </div>
    </form>
  );
}
