// GraphQL over HTTP for queries and mutations, over WebSocket (graphql-transport-ws) for subscriptions.
import { createClient, type Client } from "graphql-ws";
import { ApiError, accessToken, refresh } from "./http";

interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string };
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const token = await accessToken();
    let response: Response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
    } catch {
      throw new ApiError("offline", "Connexion impossible : vérifiez le réseau.");
    }
    const body = (await response.json().catch(() => ({}))) as { data?: T; errors?: GraphQLErrorBody[] };
    const error = body.errors?.[0];
    if (error) {
      const code = error.extensions?.code ?? "internal";
      if (code === "unauthenticated" && attempt === 0 && (await refresh())) continue;
      throw new ApiError(code, error.message);
    }
    if (!response.ok || body.data === undefined) throw new ApiError("internal", "Réponse inattendue du serveur.");
    return body.data;
  }
  throw new ApiError("unauthenticated", "Session expirée : reconnectez-vous.");
}

export type LinkState = "connecting" | "online" | "offline";
type LinkListener = (state: LinkState) => void;

let client: Client | null = null;
let linkState: LinkState = "connecting";
const linkListeners = new Set<LinkListener>();

function setLink(state: LinkState): void {
  if (state === linkState) return;
  linkState = state;
  linkListeners.forEach((l) => l(state));
}

export function onLink(listener: LinkListener): () => void {
  linkListeners.add(listener);
  listener(linkState);
  return () => linkListeners.delete(listener);
}

function socket(): Client {
  if (client) return client;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  client = createClient({
    url,
    lazy: true,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 300 * 2 ** retries)));
    },
    connectionParams: async () => {
      const token = await accessToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    on: {
      connected: () => setLink("online"),
      closed: () => setLink(navigator.onLine ? "connecting" : "offline"),
      error: () => setLink(navigator.onLine ? "connecting" : "offline"),
    },
  });
  return client;
}

export interface Subscription {
  close(): void;
}

/** Subscribe until closed; `onEnd` tells that the server ended it (an error or completion): resubscribe there. */
export function subscribe<T>(
  query: string,
  variables: () => Record<string, unknown>,
  onData: (data: T) => void,
  onEnd: (error: ApiError | null) => void,
): Subscription {
  let closed = false;
  let ended = false;
  const end = (error: ApiError | null) => {
    if (closed || ended) return;
    ended = true;
    // The socket authenticated with a token that is no longer valid: the next one connects afresh.
    if (error?.code === "unauthenticated") void resetSocket();
    onEnd(error);
  };
  const dispose = socket().subscribe<T>(
    { query, variables: variables() },
    {
      next: (value) => {
        if (value.errors?.length) {
          const first = value.errors[0] as GraphQLErrorBody;
          end(new ApiError(first.extensions?.code ?? "internal", first.message));
        } else if (value.data && !ended) onData(value.data as T);
      },
      error: (error) => end(new ApiError("unavailable", String((error as Error)?.message ?? error))),
      complete: () => end(null),
    },
  );
  return {
    close() {
      closed = true;
      dispose();
    },
  };
}

/** Drop the socket (after a sign-out, or to force a reconnection with a new token). */
export async function resetSocket(): Promise<void> {
  const previous = client;
  client = null;
  await previous?.dispose();
}

if (typeof window !== "undefined") {
  window.addEventListener("offline", () => setLink("offline"));
  window.addEventListener("online", () => {
    setLink("connecting");
    client?.terminate();
  });
}
