// The crisis chat: channels with unread counts and mentions, a live timeline that resumes without gaps
// after a cut, replies, edits, retractions, marks into the main courante, search, and an outbox that
// keeps what is typed offline and sends it once the connection is back.
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { gql, onLink, subscribe, type Subscription } from "../api/graphql";
import type {
  ChannelsQuery,
  ChatUpdatesSubscription,
  CrisisQuery,
  HistoryQuery,
  LogbookKind,
  MeQuery,
  SearchQuery,
  SendMutation,
} from "../api/generated";
import { ApiError } from "../api/http";
import { CHANNELS, CHAT_UPDATES, CRISIS, EDIT, HISTORY, MARK, MARK_READ, ME, REDACT, SEARCH, SEND } from "../api/operations";
import { time } from "../lib/clock";
import { CHANNEL, KIND } from "../lib/labels";
import { mentioned } from "../lib/mentions";
import { Outbox, type Outcome, type Pending } from "../lib/outbox";
import { setUnreadMentions } from "../lib/title";
import { cursors, emptyTimeline, merge, ordered, type Timeline } from "../lib/timeline";
import { ExerciseBanner } from "./ExerciseBanner";
import { message as errorText, useQuery } from "./hooks";

type Message = HistoryQuery["chatHistory"]["messages"][number];
type Channel = ChannelsQuery["chatChannels"][number];
const MARKS: LogbookKind[] = ["DECISION", "FACT", "ACTION", "COMMUNICATION"];
const PAGE = 50;

export function Chat({ crisisId }: { crisisId: string }) {
  const me = useQuery<MeQuery>(ME);
  const crisis = useQuery<CrisisQuery>(CRISIS, { id: crisisId });
  const [channels, setChannels] = useState<Channel[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState<Pending[]>([]);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const [hidden, setHidden] = useState(document.hidden);
  const timelines = useRef(new Map<string, Timeline<Message>>());
  const loaded = useRef(new Set<string>());
  const outbox = useMemo(() => new Outbox(localStorage, `ps_outbox_${crisisId}`), [crisisId]);
  const bump = () => setVersion((v) => v + 1);
  const myIdRef = useRef<string | undefined>(undefined);
  myIdRef.current = me.data?.me.id;

  const apply = useCallback((messages: Message[], live: boolean) => {
    for (const m of messages) {
      const before = timelines.current.get(m.channelId) ?? emptyTimeline<Message>();
      timelines.current.set(m.channelId, merge(before, [m], live));
    }
    bump();
  }, []);

  const loadChannels = useCallback(async () => {
    const data = await gql<ChannelsQuery>(CHANNELS, { crisisId });
    for (const c of data.chatChannels) {
      // Resume from where the list was taken: the live feed delivers anything newer.
      if (!timelines.current.has(c.id)) timelines.current.set(c.id, { byId: new Map(), lastRev: c.lastRev });
    }
    setChannels(data.chatChannels);
    setSelected((current) => current ?? data.chatChannels[0]?.id ?? null);
    return data.chatChannels;
  }, [crisisId]);

  // The live feed: subscribed with every channel's cursor, reopened with fresh cursors after a cut.
  useEffect(() => {
    let sub: Subscription | null = null;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const open = () => {
      sub?.close();
      sub = subscribe<ChatUpdatesSubscription>(
        CHAT_UPDATES,
        () => ({ crisisId, resume: cursors(timelines.current) }),
        (data) => {
          const update = data.chatUpdates;
          if (update.message) apply([update.message], true);
          if (update.kind === "CHANNEL") void loadChannels();
          else if (update.kind === "POSTED") setChannels((cs) => cs.map((c) => (c.id === update.channelId ? bumpUnread(c, update.message, myIdRef.current) : c)));
        },
        (end) => {
          if (stopped) return;
          if (end?.code === "forbidden") {
            setError(end.message); // no longer a member: no point in coming back
            return;
          }
          retry = setTimeout(open, 1_000);
        },
      );
    };
    void loadChannels()
      .then(() => !stopped && open())
      .catch((e: unknown) => setError(errorText(e)));
    let wasOnline = true;
    const unlisten = onLink((state) => {
      if (state === "online" && !wasOnline && !stopped) {
        open(); // fresh cursors: what was missed comes first
        void flush();
      }
      wasOnline = state === "online";
    });
    return () => {
      stopped = true;
      clearTimeout(retry);
      sub?.close();
      unlisten();
    };
  }, [crisisId, apply, loadChannels]);

  // History of the selected channel, once.
  useEffect(() => {
    if (!selected || loaded.current.has(selected)) return;
    loaded.current.add(selected);
    gql<HistoryQuery>(HISTORY, { channelId: selected, first: PAGE })
      .then((data) => apply(data.chatHistory.messages, false))
      .catch((e: unknown) => setError(errorText(e)));
  }, [selected, apply]);

  // A tab in the background reads nothing: its mentions stay unread, and are read once it is back.
  useEffect(() => {
    const changed = () => setHidden(document.hidden);
    document.addEventListener("visibilitychange", changed);
    return () => document.removeEventListener("visibilitychange", changed);
  }, []);

  // The tab's title tells the mentions not read yet: in the other channels, and in this one while the tab is hidden.
  useEffect(() => {
    setUnreadMentions(channels.reduce((n, c) => n + (c.id === selected && !hidden ? 0 : c.unreadMentions), 0));
  }, [channels, selected, hidden]);
  useEffect(() => () => setUnreadMentions(0), []);

  // Reading the selected channel moves its read marker.
  const current = selected ? ordered(timelines.current.get(selected) ?? emptyTimeline<Message>()) : [];
  const lastSeq = current.length ? current[current.length - 1].seq : 0;
  useEffect(() => {
    const channel = channels.find((c) => c.id === selected);
    if (!selected || !channel || lastSeq <= channel.readSeq || hidden) return;
    const timer = setTimeout(() => {
      gql(MARK_READ, { channelId: selected, seq: lastSeq })
        .then(() => setChannels((cs) => cs.map((c) => (c.id === selected ? { ...c, readSeq: lastSeq, unread: 0, unreadMentions: 0 } : c))))
        .catch(() => undefined);
    }, 400);
    return () => clearTimeout(timer);
  }, [selected, lastSeq, channels, hidden]);

  const send = useCallback(
    async (item: Pending): Promise<Outcome> => {
      try {
        const data = await gql<SendMutation>(SEND, {
          input: {
            channelId: item.channelId,
            clientId: item.clientId,
            text: item.text,
            replyTo: item.replyTo ?? null,
            mentionUserIds: item.mentionUserIds ?? [],
            mentionCellIds: item.mentionCellIds ?? [],
          },
        });
        apply([data.sendMessage.message], false);
        return "sent";
      } catch (e) {
        if (e instanceof ApiError && ["invalid", "forbidden", "not_found", "conflict"].includes(e.code)) {
          setError(`Message non envoyé : ${e.message}`);
          return "refused";
        }
        return "retry"; // offline, unavailable, rate limited: kept for later
      }
    },
    [apply],
  );

  const flush = useCallback(async () => {
    await outbox.flush(send);
    setPending(outbox.list());
  }, [outbox, send]);

  useEffect(() => {
    setPending(outbox.list());
    void flush();
    const timer = setInterval(() => {
      if (outbox.list().length) void flush();
    }, 3_000);
    return () => clearInterval(timer);
  }, [outbox, flush]);

  const people = (crisis.data?.crisis.members ?? []).map((m) => ({ id: m.userId, name: m.displayName }));
  const cells = (crisis.data?.crisis.cells ?? []).map((c) => ({ id: c.id, name: c.name }));
  const channel = channels.find((c) => c.id === selected) ?? null;
  const myId = me.data?.me.id;
  const leads = crisis.data?.crisis.myRole === "DIRECTOR" || crisis.data?.crisis.myRole === "COORDINATOR";
  const byId = new Map(current.map((m) => [m.id, m]));
  void version;

  return (
    <section class="chat" data-testid="chat">
      <ExerciseBanner mode={crisis.data?.crisis.mode} />
      <aside class="channels" aria-label="Canaux">
        <h1>Messagerie</h1>
        <Search crisisId={crisisId} onOpen={(id) => setSelected(id)} />
        <ul>
          {channels.map((c) => (
            <li key={c.id}>
              <button
                type="button"
                class={c.id === selected ? "channel selected" : "channel"}
                aria-current={c.id === selected ? "true" : undefined}
                onClick={() => setSelected(c.id)}
              >
                <span>{c.name}</span>
                <span class="muted small">{CHANNEL[c.kind]}</span>
                {c.unread > 0 && c.id !== selected && (
                  <span class="badge" aria-label={`${c.unread} non lus`} data-testid="unread">
                    {c.unread}
                    {c.unreadMentions > 0 && " @"}
                  </span>
                )}
              </button>
            </li>
          ))}
        </ul>
      </aside>
      <div class="timeline">
        {error && (
          <p class="error" role="alert">
            {error} <button type="button" class="link" onClick={() => setError(null)}>Fermer</button>
          </p>
        )}
        {channel ? (
          <>
            <h2>{channel.name}</h2>
            <ol class="messages" data-testid="messages" aria-live="polite">
              {current.map((m) => (
                <MessageItem
                  key={m.id}
                  m={m}
                  replied={m.replyTo ? byId.get(m.replyTo) : undefined}
                  mine={m.authorId === myId}
                  mentionsMe={!!myId && m.mentionUserIds.includes(myId)}
                  leads={leads}
                  writable={channel.writable}
                  onReply={() => setReplyTo(m)}
                  onError={setError}
                />
              ))}
              {pending
                .filter((p) => p.channelId === channel.id && !current.some((m) => m.clientId === p.clientId))
                .map((p) => (
                  <li key={p.clientId} class="message pending" data-testid="pending">
                    <div class="meta">En attente d'envoi…</div>
                    <div class="text">{p.text}</div>
                  </li>
                ))}
            </ol>
            {channel.writable ? (
              <Composer
                channel={channel}
                replyTo={replyTo}
                onCancelReply={() => setReplyTo(null)}
                people={people}
                cells={cells}
                onSend={(text) => {
                  const found = mentioned(text, people, cells);
                  outbox.add({
                    channelId: channel.id,
                    text,
                    replyTo: replyTo?.id ?? null,
                    mentionUserIds: found.users,
                    mentionCellIds: found.cells,
                  });
                  setReplyTo(null);
                  setPending(outbox.list());
                  void flush();
                }}
              />
            ) : (
              <p class="muted">Vous lisez ce canal sans pouvoir y écrire.</p>
            )}
          </>
        ) : (
          <p aria-busy="true">Chargement des canaux…</p>
        )}
      </div>
    </section>
  );

}

function bumpUnread(c: Channel, m: Message | null | undefined, myId: string | undefined): Channel {
  if (!m || m.authorId === myId || m.seq <= c.readSeq) return c;
  const mention = !!myId && m.mentionUserIds.includes(myId);
  return { ...c, unread: c.unread + 1, unreadMentions: c.unreadMentions + (mention ? 1 : 0), lastSeq: Math.max(c.lastSeq, m.seq) };
}

function MessageItem(props: {
  m: Message;
  replied: Message | undefined;
  mine: boolean;
  mentionsMe: boolean;
  leads: boolean;
  writable: boolean;
  onReply: () => void;
  onError: (text: string) => void;
}) {
  const { m } = props;
  const [editing, setEditing] = useState(false);
  const act = async (query: string, variables: Record<string, unknown>) => {
    try {
      await gql(query, variables);
    } catch (e) {
      props.onError(errorText(e));
    }
  };
  return (
    <li class={`message${props.mentionsMe ? " mention" : ""}${m.redactedAt ? " redacted" : ""}`} data-seq={m.seq}>
      <div class="meta">
        <strong>{m.author}</strong> <time dateTime={m.createdAt}>{time(m.createdAt)}</time>
        {m.editedAt && !m.redactedAt && <span class="muted"> (modifié)</span>}
        {m.markedKind && (
          <span class="tag" data-testid="marked">
            {KIND[m.markedKind]} · main courante
          </span>
        )}
        {m.pinnedAt && <span class="tag">épinglé</span>}
      </div>
      {props.replied && (
        <blockquote class="reply">
          {props.replied.author} : {(props.replied.text ?? "message retiré").slice(0, 120)}
        </blockquote>
      )}
      {m.redactedAt ? (
        <div class="text muted">Message retiré par {m.redactedBy}.</div>
      ) : editing ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const text = String(new FormData(e.currentTarget).get("text") ?? "");
            void act(EDIT, { messageId: m.id, text }).then(() => setEditing(false));
          }}
        >
          <textarea name="text" required maxLength={10_000} defaultValue={m.text ?? ""} aria-label="Nouveau texte" />
          <div class="actions">
            <button type="submit">Enregistrer</button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>Annuler</button>
          </div>
        </form>
      ) : (
        <div class="text">{m.text ?? "(illisible)"}</div>
      )}
      {!m.redactedAt && props.writable && (
        <div class="tools">
          <button type="button" class="link" onClick={props.onReply}>Répondre</button>
          {props.mine && <button type="button" class="link" onClick={() => setEditing(true)}>Modifier</button>}
          {(props.mine || props.leads) && (
            <button
              type="button"
              class="link"
              onClick={() => {
                if (confirm("Retirer ce message ? Une trace restera (qui, quand).")) void act(REDACT, { messageId: m.id });
              }}
            >
              Retirer
            </button>
          )}
          {!m.markedKind && (
            <select
              aria-label="Inscrire à la main courante"
              data-testid="mark"
              onChange={(e) => {
                const kind = (e.target as HTMLSelectElement).value;
                if (kind) void act(MARK, { messageId: m.id, kind });
              }}
            >
              <option value="">Inscrire à la main courante…</option>
              {MARKS.map((k) => (
                <option value={k} key={k}>{KIND[k]}</option>
              ))}
            </select>
          )}
        </div>
      )}
    </li>
  );
}

function Composer(props: {
  channel: Channel;
  replyTo: Message | null;
  onCancelReply: () => void;
  people: { id: string; name: string }[];
  cells: { id: string; name: string }[];
  onSend: (text: string) => void;
}) {
  const [text, setText] = useState("");
  const reply = props.replyTo;
  const submit = () => {
    if (!text.trim()) return;
    props.onSend(text);
    setText("");
  };
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      {reply && (
        <p class="reply">
          En réponse à {reply.author} : {(reply.text ?? "").slice(0, 80)}{" "}
          <button type="button" class="link" onClick={props.onCancelReply}>Annuler</button>
        </p>
      )}
      <textarea
        aria-label={`Message dans ${props.channel.name}`}
        data-testid="composer"
        value={text}
        maxLength={10_000}
        rows={2}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <div class="actions">
        <select
          aria-label="Mentionner"
          onChange={(e) => {
            const name = (e.target as HTMLSelectElement).value;
            if (name) setText((t) => `${t}${t && !t.endsWith(" ") ? " " : ""}@${name} `);
            (e.target as HTMLSelectElement).value = "";
          }}
        >
          <option value="">Mentionner…</option>
          {props.people.map((p) => (
            <option value={p.name} key={p.id}>{p.name}</option>
          ))}
          {props.cells.map((c) => (
            <option value={c.name} key={c.id}>{c.name}</option>
          ))}
        </select>
        <button type="submit">Envoyer</button>
      </div>
    </form>
  );
}

function Search({ crisisId, onOpen }: { crisisId: string; onOpen: (channelId: string) => void }) {
  const [results, setResults] = useState<SearchQuery["chatSearch"]["messages"] | null>(null);
  const [error, setError] = useState<string | null>(null);
  return (
    <div class="search">
      <form
        role="search"
        onSubmit={async (e) => {
          e.preventDefault();
          const text = String(new FormData(e.currentTarget).get("q") ?? "").trim();
          if (!text) return setResults(null);
          try {
            setResults((await gql<SearchQuery>(SEARCH, { crisisId, text })).chatSearch.messages);
            setError(null);
          } catch (err) {
            setError(errorText(err));
          }
        }}
      >
        <input name="q" type="search" placeholder="Rechercher (mots entiers)" aria-label="Rechercher dans la messagerie" />
      </form>
      {error && <p class="error">{error}</p>}
      {results && (
        <ul class="results" data-testid="search-results">
          {results.length === 0 && <li class="muted">Aucun message.</li>}
          {results.map((r) => (
            <li key={r.id}>
              <button type="button" class="link" onClick={() => onOpen(r.channelId)}>
                {r.author}, {time(r.createdAt)} : {(r.text ?? "").slice(0, 80)}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
