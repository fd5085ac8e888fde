import { describe, expect, it } from "vitest";
import { sinceT0 } from "./clock";
import { mentioned } from "./mentions";
import { Outbox, type KeyValue, type Outcome, type Pending } from "./outbox";
import { cursors, emptyTimeline, merge, ordered } from "./timeline";
import { onUnreadMentions, pageTitle, setUnreadMentions } from "./title";
import { sourceLabel } from "./labels";

class Memory implements KeyValue {
  data = new Map<string, string>();
  getItem(key: string): string | null {
    return this.data.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.data.set(key, value);
  }
}

describe("the crisis clock", () => {
  it("counts hours and minutes since T0, beyond a day", () => {
    const t0 = new Date("2026-11-23T03:00:00Z");
    expect(sinceT0(t0, new Date("2026-11-23T03:00:59Z"))).toBe("T+00:00");
    expect(sinceT0(t0, new Date("2026-11-23T05:07:00Z"))).toBe("T+02:07");
    expect(sinceT0(t0, new Date("2026-11-25T06:07:00Z"))).toBe("T+51:07");
    expect(sinceT0("2026-11-23T03:00:00Z", new Date("2026-11-23T02:55:00Z"))).toBe("T-00:05");
  });
});

describe("a channel's timeline", () => {
  const m = (id: string, seq: number, rev: number, text = id) => ({ id, seq, rev, text });

  it("keeps the latest revision of each message, in seq order, nothing doubled", () => {
    let t = emptyTimeline<ReturnType<typeof m>>();
    t = merge(t, [m("a", 1, 1), m("b", 2, 2)]);
    t = merge(t, [m("a", 1, 3, "a edited")]);
    t = merge(t, [m("a", 1, 1), m("b", 2, 2)]); // a replay changes nothing
    expect(ordered(t).map((x) => [x.id, x.text])).toEqual([
      ["a", "a edited"],
      ["b", "b"],
    ]);
    expect(t.lastRev).toBe(3);
  });

  it("does not move the resume point on history pages", () => {
    let t = emptyTimeline<ReturnType<typeof m>>();
    t = merge(t, [m("z", 9, 40)], false);
    expect(t.lastRev).toBe(0);
    t = merge(t, [m("y", 10, 41)]);
    // A channel empty when listed resumes from 0: what was posted there during a cut comes back too.
    expect(cursors(new Map([["c1", t], ["c2", emptyTimeline()]]))).toEqual([
      { channelId: "c1", afterRev: 41 },
      { channelId: "c2", afterRev: 0 },
    ]);
  });
});

describe("the outbox of messages typed offline", () => {
  it("keeps messages until they are sent, in order, with their client ids", async () => {
    const storage = new Memory();
    const outbox = new Outbox(storage, "k");
    const first = outbox.add({ channelId: "c", text: "un" });
    const second = outbox.add({ channelId: "c", text: "deux" });
    expect(new Outbox(storage, "k").list().map((p) => p.text)).toEqual(["un", "deux"]); // survives a reload

    const tried: string[] = [];
    let online = false;
    const send = async (p: Pending): Promise<Outcome> => {
      tried.push(p.clientId);
      return online ? "sent" : "retry";
    };
    expect(await outbox.flush(send)).toBe(0);
    expect(outbox.list()).toHaveLength(2);
    online = true;
    expect(await outbox.flush(send)).toBe(2);
    expect(outbox.list()).toHaveLength(0);
    // The same client ids on every attempt: the server stores each message once.
    expect(tried).toEqual([first.clientId, first.clientId, second.clientId]);
  });

  it("drops what the server refuses for good, and tells", async () => {
    const outbox = new Outbox(new Memory(), "k");
    outbox.add({ channelId: "c", text: "" });
    outbox.add({ channelId: "c", text: "ok" });
    const refused: string[] = [];
    const sent = await outbox.flush(async (p) => (p.text ? "sent" : "refused"), (p) => refused.push(p.text));
    expect(sent).toBe(1);
    expect(refused).toEqual([""]);
    expect(outbox.list()).toEqual([]);
  });

  it("shares one pass between concurrent flushes", async () => {
    const outbox = new Outbox(new Memory(), "k");
    outbox.add({ channelId: "c", text: "une fois" });
    let calls = 0;
    const send = async (): Promise<Outcome> => {
      calls += 1;
      await new Promise((r) => setTimeout(r, 5));
      return "sent";
    };
    await Promise.all([outbox.flush(send), outbox.flush(send)]);
    expect(calls).toBe(1);
  });
});

describe("mentions", () => {
  it("finds people and cells by their names, longest first", () => {
    const people = [
      { id: "u1", name: "Anne" },
      { id: "u2", name: "Anne Martin" },
    ];
    const cells = [{ id: "c1", name: "Cellule SI et opérations" }];
    expect(mentioned("@Anne Martin et @cellule si et opérations : go", people, cells)).toEqual({
      users: ["u2"],
      cells: ["c1"],
    });
    expect(mentioned("Pas de mention ici", people, cells)).toEqual({ users: [], cells: [] });
  });
});

describe("the tab's title", () => {
  it("counts unread mentions in front, only when there are some", () => {
    expect(pageTitle("Main courante", 0)).toBe("PanicSAFE — Main courante");
    expect(pageTitle("Main courante", 2)).toBe("(2) PanicSAFE — Main courante");
    expect(pageTitle(null, 1)).toBe("(1) PanicSAFE");
    expect(pageTitle("Messagerie", 250)).toBe("(99+) PanicSAFE — Messagerie");
  });

  it("tells each listener the count, once per change", () => {
    const seen: number[] = [];
    const stop = onUnreadMentions((n) => seen.push(n));
    setUnreadMentions(3);
    setUnreadMentions(3);
    setUnreadMentions(0);
    stop();
    setUnreadMentions(5);
    expect(seen).toEqual([0, 3, 0]);
    setUnreadMentions(0);
  });
});

describe("an entry's source", () => {
  it("is named in French, and shown as it is when unknown", () => {
    expect(sourceLabel("manual")).toBe("Saisie manuelle");
    expect(sourceLabel("chat")).toBe("Messagerie");
    expect(sourceLabel("gateway")).toBe("Plateforme");
    expect(sourceLabel("toString")).toBe("toString");
    expect(sourceLabel("radio")).toBe("radio");
  });
});
