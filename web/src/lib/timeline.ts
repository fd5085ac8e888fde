// A channel's messages as the client holds them: merged from history, resumed changes and live
// updates, by id, the latest revision winning, in seq order; and the revision to resume from.

export interface Revised {
  id: string;
  seq: number;
  rev: number;
}

export interface Timeline<M extends Revised> {
  byId: Map<string, M>;
  lastRev: number;
}

export function emptyTimeline<M extends Revised>(): Timeline<M> {
  return { byId: new Map(), lastRev: 0 };
}

/** The timeline with `messages` applied: an older revision of a message never replaces a newer one. */
export function merge<M extends Revised>(timeline: Timeline<M>, messages: M[], live = true): Timeline<M> {
  let changed = false;
  const byId = new Map(timeline.byId);
  let lastRev = timeline.lastRev;
  for (const message of messages) {
    const known = byId.get(message.id);
    if (!known || known.rev < message.rev) {
      byId.set(message.id, message);
      changed = true;
    }
    // History pages are not changes: only live and resumed updates move the resume point.
    if (live && message.rev > lastRev) {
      lastRev = message.rev;
      changed = true;
    }
  }
  return changed ? { byId, lastRev } : timeline;
}

export function ordered<M extends Revised>(timeline: Timeline<M>): M[] {
  return [...timeline.byId.values()].sort((a, b) => a.seq - b.seq);
}

/** Where to resume every channel: its last applied revision (0 for a channel still empty when listed:
 *  everything written there since is missed news too). */
export function cursors<M extends Revised>(timelines: Map<string, Timeline<M>>): { channelId: string; afterRev: number }[] {
  return [...timelines.entries()].map(([channelId, t]) => ({ channelId, afterRev: t.lastRev }));
}
