// Messages typed while the connection is down: kept (in localStorage, so a reload keeps them too) and
// sent once the connection is back. Each carries the client id it was given when typed, so a send
// that reached the server before the connection dropped is not stored twice.

export interface Pending {
  clientId: string;
  channelId: string;
  text: string;
  replyTo?: string | null;
  mentionUserIds?: string[];
  mentionCellIds?: string[];
  createdAt: number;
}

/** What became of one attempt: stored, try again later (offline), or refused for good. */
export type Outcome = "sent" | "retry" | "refused";

export interface KeyValue {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export function newClientId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Outbox {
  private flushing: Promise<number> | null = null;

  constructor(
    private readonly storage: KeyValue,
    private readonly key: string,
  ) {}

  list(): Pending[] {
    try {
      const raw = this.storage.getItem(this.key);
      return raw ? (JSON.parse(raw) as Pending[]) : [];
    } catch {
      return [];
    }
  }

  private save(items: Pending[]): void {
    this.storage.setItem(this.key, JSON.stringify(items));
  }

  add(item: Omit<Pending, "clientId" | "createdAt"> & { clientId?: string }): Pending {
    const pending: Pending = { ...item, clientId: item.clientId ?? newClientId(), createdAt: Date.now() };
    this.save([...this.list(), pending]);
    return pending;
  }

  remove(clientId: string): void {
    this.save(this.list().filter((p) => p.clientId !== clientId));
  }

  /** Send what is pending, oldest first, one at a time (order kept); stop at the first `retry`.
   *  Returns how many were sent. Concurrent calls share one pass. */
  flush(send: (item: Pending) => Promise<Outcome>, refused?: (item: Pending) => void): Promise<number> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      let sent = 0;
      for (const item of this.list()) {
        const outcome = await send(item).catch((): Outcome => "retry");
        if (outcome === "retry") break;
        this.remove(item.clientId);
        if (outcome === "sent") sent += 1;
        else refused?.(item);
      }
      return sent;
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }
}
