// A crisis at a glance: status, severity, the T0 clock, cells and members, invitations with QR codes.
import { useState } from "preact/hooks";
import { gql } from "../api/graphql";
import type { CrisisQuery, CrisisRole, InviteMutation } from "../api/generated";
import { CRISIS, INVITE } from "../api/operations";
import { dateTime, sinceT0 } from "../lib/clock";
import { ROLE, SEVERITY, STATUS } from "../lib/labels";
import { ExerciseBanner } from "./ExerciseBanner";
import { message, useNow, useQuery } from "./hooks";
import { Svg } from "./Svg";

const INVITABLE: CrisisRole[] = ["MEMBER", "COORDINATOR", "OBSERVER", "PATIENTS_REPRESENTATIVE", "EXTERNAL_LIAISON"];

export function CrisisHome({ crisisId }: { crisisId: string }) {
  const crisis = useQuery<CrisisQuery>(CRISIS, { id: crisisId });
  const now = useNow(10_000);
  if (crisis.error) return <p class="error" role="alert">{crisis.error}</p>;
  if (!crisis.data) return <p aria-busy="true">Chargement…</p>;
  const c = crisis.data.crisis;
  const leads = c.myRole === "DIRECTOR" || c.myRole === "COORDINATOR";
  const cellName = new Map(c.cells.map((cell) => [cell.id, cell.name]));

  return (
    <section data-testid="crisis-home">
      <ExerciseBanner mode={c.mode} />
      <header class="row">
        <h1>{c.title}</h1>
        <span class="clock" data-testid="t0-clock" title={`T0 : ${dateTime(c.t0)}`}>{sinceT0(c.t0, now)}</span>
      </header>
      <p class="muted">
        {STATUS[c.status]} · gravité {SEVERITY[c.severity].toLowerCase()} · T0 {dateTime(c.t0)} · vous êtes{" "}
        {ROLE[c.myRole].toLowerCase()}
        {c.establishments.length > 0 && <> · {c.establishments.map((e) => e.name).join(", ")}</>}
      </p>
      <div class="actions">
        <a class="button" href={`#/crise/${c.id}/messagerie`}>Messagerie</a>
        <a class="button" href={`#/crise/${c.id}/main-courante`}>Main courante</a>
      </div>
      <div class="columns">
        <section class="card">
          <h2>Cellules</h2>
          <ul>
            {c.cells.map((cell) => (
              <li key={cell.id}>{cell.name}</li>
            ))}
          </ul>
        </section>
        <section class="card">
          <h2>Membres</h2>
          {c.members.length === 0 && <p class="muted">Liste réservée aux membres de la cellule de crise.</p>}
          <ul data-testid="members">
            {c.members.map((m) => (
              <li key={m.userId}>
                <strong>{m.displayName}</strong> — {ROLE[m.role]}
                {m.function && <> ({m.function})</>}
                {m.cellIds.length > 0 && (
                  <span class="muted"> · {m.cellIds.map((id) => cellName.get(id) ?? "?").join(", ")}</span>
                )}
              </li>
            ))}
          </ul>
        </section>
      </div>
      {leads && c.status !== "CLOSED" && <Invite crisis={c} onDone={() => void crisis.reload()} />}
    </section>
  );
}

function Invite({ crisis, onDone }: { crisis: CrisisQuery["crisis"]; onDone: () => void }) {
  const [issued, setIssued] = useState<InviteMutation["createInvitation"] | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <section class="card">
      <h2>Inviter une personne</h2>
      <p class="muted">Un lien à usage unique, à transmettre en main propre ou par QR code (aucun courriel).</p>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const form = new FormData(e.currentTarget);
          setError(null);
          try {
            const done = await gql<InviteMutation>(INVITE, {
              input: {
                login: form.get("login"),
                displayName: form.get("displayName"),
                crisisId: crisis.id,
                crisisRole: form.get("role"),
                cellIds: form.getAll("cell"),
              },
            });
            setIssued(done.createInvitation);
            (e.target as HTMLFormElement).reset();
            onDone();
          } catch (err) {
            setError(message(err));
          }
        }}
      >
        <label>
          Nom affiché
          <input name="displayName" required maxLength={200} />
        </label>
        <label>
          Identifiant de connexion
          <input name="login" required pattern="[a-z0-9][a-z0-9._\-]{2,63}" autoCapitalize="none" />
        </label>
        <label>
          Rôle
          <select name="role">
            {INVITABLE.map((r) => (
              <option value={r} key={r}>{ROLE[r]}</option>
            ))}
          </select>
        </label>
        <fieldset>
          <legend>Cellules</legend>
          {crisis.cells.map((cell) => (
            <label class="check" key={cell.id}>
              <input type="checkbox" name="cell" value={cell.id} /> {cell.name}
            </label>
          ))}
        </fieldset>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit">Créer l'invitation</button>
      </form>
      {issued && (
        <div class="issued" data-testid="invitation">
          <p>
            Invitation de <strong>{issued.invitation.displayName}</strong> : ce lien n'est montré qu'une fois.
          </p>
          <Svg class="qr" markup={issued.qrSvg} label="QR code de l'invitation" />
          <p>
            <a href={issued.link} data-testid="invitation-link">{issued.link}</a>
          </p>
        </div>
      )}
    </section>
  );
}
