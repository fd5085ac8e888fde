// The tab's title: where one is, and the mentions not yet read, so that a tab in the background says
// that someone is asking for you ("(2) PanicSAFE — Main courante").

/** `(2) PanicSAFE — Messagerie` with two unread mentions; no count when there is none. */
export function pageTitle(section: string | null, unreadMentions: number): string {
  const count = unreadMentions > 0 ? `(${unreadMentions > 99 ? "99+" : unreadMentions}) ` : "";
  return `${count}PanicSAFE${section ? ` — ${section}` : ""}`;
}

/** The unread mentions of the crisis on screen, told by whichever screen follows them. */
type Listener = (count: number) => void;
const listeners = new Set<Listener>();
let current = 0;

export function setUnreadMentions(count: number): void {
  if (count === current) return;
  current = count;
  listeners.forEach((l) => l(count));
}

export function onUnreadMentions(listener: Listener): () => void {
  listeners.add(listener);
  listener(current);
  return () => {
    listeners.delete(listener);
  };
}
