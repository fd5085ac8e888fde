// The crisis clock: time elapsed since T0 (the moment the attack was known), as the cell says it.

/** `T+hh:mm` since `t0` (hours beyond 24 keep counting: T+51:07); `T-hh:mm` before it. */
export function sinceT0(t0: string | Date, now: Date = new Date()): string {
  const start = typeof t0 === "string" ? new Date(t0) : t0;
  const minutes = Math.floor((now.getTime() - start.getTime()) / 60_000);
  const sign = minutes < 0 ? "-" : "+";
  const total = Math.abs(minutes);
  const hours = Math.floor(total / 60);
  return `T${sign}${String(hours).padStart(2, "0")}:${String(total % 60).padStart(2, "0")}`;
}

/** A French date and time, to the minute, in the browser's time zone. */
export function dateTime(value: string | Date): string {
  const date = typeof value === "string" ? new Date(value) : value;
  return date.toLocaleString("fr-FR", { dateStyle: "short", timeStyle: "short" });
}

export function time(value: string | Date): string {
  const date = typeof value === "string" ? new Date(value) : value;
  return date.toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
}
