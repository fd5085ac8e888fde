// The main courante: a live timeline with filters, manual entries, and signed exports (PDF, JSON bundle).
import { useEffect, useState } from "preact/hooks";
import { gql, subscribe } from "../api/graphql";
import type { CrisisQuery, ExportFormat, ExportMutation, LogbookKind, LogbookQuery } from "../api/generated";
import { accessToken } from "../api/http";
import { ADD_ENTRY, CRISIS, EXPORT, LOGBOOK, LOGBOOK_ENTRIES } from "../api/operations";
import { dateTime } from "../lib/clock";
import { KIND, sourceLabel } from "../lib/labels";
import { ExerciseBanner } from "./ExerciseBanner";
import { message, useQuery } from "./hooks";
import { needsFreshFactor, Reauth } from "./Reauth";

const KINDS: LogbookKind[] = ["FACT", "DECISION", "ACTION", "COMMUNICATION", "SYSTEM"];

export function Logbook({ crisisId }: { crisisId: string }) {
  const crisis = useQuery<CrisisQuery>(CRISIS, { id: crisisId });
  const [kind, setKind] = useState<LogbookKind | "">("");
  const [text, setText] = useState("");
  const [tick, setTick] = useState(0);
  const filter = { kinds: kind ? [kind] : null, text: text || null };
  const page = useQuery<LogbookQuery>(LOGBOOK, { crisisId, filter, first: 200, order: "NEWEST_FIRST" }, String(tick));

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    let sub = open();
    function open() {
      return subscribe(
        LOGBOOK_ENTRIES,
        () => ({ crisisId }),
        () => {
          clearTimeout(timer);
          timer = setTimeout(() => setTick((t) => t + 1), 250);
        },
        (end) => {
          if (end?.code === "forbidden" || stopped) return; // no longer a member: stay down
          retry = setTimeout(() => {
            sub = open();
            setTick((t) => t + 1); // what arrived meanwhile
          }, 1_000);
        },
      );
    }
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(retry);
      sub.close();
    };
  }, [crisisId]);

  const leads = crisis.data?.crisis.myRole === "DIRECTOR" || crisis.data?.crisis.myRole === "COORDINATOR";
  const writes = crisis.data && crisis.data.crisis.myRole !== "OBSERVER";

  return (
    <section data-testid="logbook">
      <ExerciseBanner mode={crisis.data?.crisis.mode} />
      <header class="row">
        <h1>Main courante</h1>
        {page.data && <span class="muted">{page.data.logbook.size} entrées</span>}
      </header>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Nature
          <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as LogbookKind | "")}>
            <option value="">Toutes</option>
            {KINDS.map((k) => (
              <option value={k} key={k}>{KIND[k]}</option>
            ))}
          </select>
        </label>
        <label>
          Texte
          <input type="search" value={text} onChange={(e) => setText((e.target as HTMLInputElement).value.trim())} />
        </label>
      </form>
      {writes && <Entry crisisId={crisisId} onDone={() => setTick((t) => t + 1)} />}
      {leads && <Exports crisisId={crisisId} />}
      {page.error && <p class="error" role="alert">{page.error}</p>}
      <ol class="entries" data-testid="entries">
        {page.data?.logbook.entries.map((e) => (
          <li key={e.id} class={`entry ${e.kind.toLowerCase()}`}>
            <div class="meta">
              <span class="seq">n° {e.seq}</span> <span class="tag">{KIND[e.kind]}</span>{" "}
              <time dateTime={e.occurredAt}>{dateTime(e.occurredAt)}</time> · {e.author} ·{" "}
              <span data-testid="source">source : {sourceLabel(e.source).toLowerCase()}</span>
              {e.rekeyed && <span class="muted"> · saisie a posteriori</span>}
            </div>
            <div class="summary">{e.summary}</div>
            {e.body && <div class="body">{e.body}</div>}
            <div class="hash muted small" title="Empreinte de l'entrée (RFC 6962)">{e.leafHash.slice(0, 16)}…</div>
          </li>
        ))}
      </ol>
    </section>
  );
}

function Entry({ crisisId, onDone }: { crisisId: string; onDone: () => void }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)}>
        Nouvelle entrée
      </button>
    );
  }
  return (
    <form
      class="card"
      aria-label="Nouvelle entrée de la main courante"
      onSubmit={async (e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget);
        const occurred = String(form.get("occurredAt") ?? "");
        try {
          await gql(ADD_ENTRY, {
            crisisId,
            entry: {
              kind: form.get("kind"),
              summary: form.get("summary"),
              body: form.get("body") ?? "",
              occurredAt: occurred ? new Date(occurred).toISOString() : null,
            },
          });
          setOpen(false);
          onDone();
        } catch (err) {
          setError(message(err));
        }
      }}
    >
      <label>
        Nature
        <select name="kind">
          {KINDS.filter((k) => k !== "SYSTEM").map((k) => (
            <option value={k} key={k}>{KIND[k]}</option>
          ))}
        </select>
      </label>
      <label>
        Résumé (une ligne)
        <input name="summary" required maxLength={500} />
      </label>
      <label>
        Détail (chiffré)
        <textarea name="body" maxLength={20_000} rows={3} />
      </label>
      <label>
        Survenu le (si ce n'est pas maintenant)
        <input name="occurredAt" type="datetime-local" />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="actions">
        <button type="submit">Inscrire</button>
        <button type="button" class="secondary" onClick={() => setOpen(false)}>Annuler</button>
      </div>
    </form>
  );
}

async function download(path: string, filename: string): Promise<void> {
  const token = await accessToken();
  const response = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) throw new Error("Téléchargement refusé.");
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function Exports({ crisisId }: { crisisId: string }) {
  const [status, setStatus] = useState<string | null>(null);
  const [retry, setRetry] = useState<ExportFormat | null>(null);
  const run = async (format: ExportFormat) => {
    setStatus("Préparation de l'export…");
    try {
      const done = await gql<ExportMutation>(EXPORT, { crisisId, format });
      await download(done.exportLogbook.downloadPath, done.exportLogbook.filename);
      setStatus(`${done.exportLogbook.filename} téléchargé (SHA-256 ${done.exportLogbook.sha256.slice(0, 16)}…).`);
    } catch (err) {
      if (needsFreshFactor(err)) {
        setStatus(null);
        setRetry(format);
      } else setStatus(message(err));
    }
  };
  return (
    <div class="exports">
      <button type="button" class="secondary" onClick={() => void run("PDF")}>Export PDF</button>
      <button type="button" class="secondary" onClick={() => void run("JSON")} data-testid="export-json">
        Paquet de preuve (JSON)
      </button>
      <button type="button" class="secondary" onClick={() => void run("CSV")}>CSV</button>
      {status && <p role="status">{status}</p>}
      {retry && (
        <Reauth
          onDone={() => {
            const format = retry;
            setRetry(null);
            void run(format);
          }}
          onCancel={() => setRetry(null)}
        />
      )}
    </div>
  );
}
