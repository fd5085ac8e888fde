// The gateway's HTTP API: JSON in and out, errors with their stable code, and the session's tokens.
// The access token lives in memory only; the refresh token is an HttpOnly cookie the browser keeps,
// paired with a CSRF token kept for this tab in sessionStorage.

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface SessionBody {
  accessToken: string;
  csrfToken: string;
  sessionId: string;
  expiresIn: number;
}

type Listener = (signedIn: boolean) => void;

const CSRF_KEY = "ps_csrf";
const MARGIN_MS = 60_000;

let access: string | null = null;
let expiresAt = 0;
let refreshing: Promise<boolean> | null = null;
const listeners = new Set<Listener>();

export function onSession(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function startSession(body: SessionBody): void {
  access = body.accessToken;
  expiresAt = Date.now() + body.expiresIn * 1000;
  sessionStorage.setItem(CSRF_KEY, body.csrfToken);
  listeners.forEach((l) => l(true));
}

export function endSession(): void {
  access = null;
  expiresAt = 0;
  sessionStorage.removeItem(CSRF_KEY);
  listeners.forEach((l) => l(false));
}

export async function post<T>(path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError("offline", "Connexion impossible : vérifiez le réseau.");
  }
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string } }).error;
    throw new ApiError(error?.code ?? "internal", error?.message ?? "Erreur inattendue.");
  }
  return data as T;
}

/** A new access token from the refresh cookie; false when the session is over. */
export function refresh(): Promise<boolean> {
  if (refreshing) return refreshing;
  const csrf = sessionStorage.getItem(CSRF_KEY);
  if (!csrf) return Promise.resolve(false);
  refreshing = post<SessionBody>("/auth/refresh", {}, { "X-PanicSAFE-CSRF": csrf })
    .then((body) => {
      startSession(body);
      return true;
    })
    .catch((error: unknown) => {
      if (error instanceof ApiError && error.code !== "offline") endSession();
      return false;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** A valid access token, refreshed shortly before it expires; null when signed out. */
export async function accessToken(): Promise<string | null> {
  if (access && Date.now() < expiresAt - MARGIN_MS) return access;
  if (await refresh()) return access;
  return access && Date.now() < expiresAt ? access : null;
}

export async function logout(): Promise<void> {
  const csrf = sessionStorage.getItem(CSRF_KEY) ?? "";
  await post("/auth/logout", {}, { "X-PanicSAFE-CSRF": csrf }).catch(() => undefined);
  endSession();
}
