// Small hooks shared by the screens: loading a query, the current hash route, a ticking clock.
import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError } from "../api/http";
import { gql } from "../api/graphql";

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  reload: () => Promise<void>;
}

export function useQuery<T>(query: string, variables: Record<string, unknown> = {}, key = ""): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const vars = JSON.stringify(variables);
  const reload = useCallback(async () => {
    try {
      setData(await gql<T>(query, JSON.parse(vars) as Record<string, unknown>));
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : "Erreur inattendue.");
    }
  }, [query, vars]);
  useEffect(() => {
    void reload();
  }, [reload, key]);
  return { data, error, reload };
}

export function useHash(): string {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const update = () => setHash(location.hash || "#/");
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return hash;
}

export function useNow(everyMs = 15_000): Date {
  const [now, setNow] = useState(new Date());
  useEffect(() => {
    const timer = setInterval(() => setNow(new Date()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

export function message(error: unknown): string {
  return error instanceof ApiError ? error.message : "Erreur inattendue.";
}

/** A form's action: busy while it runs, its error (a French sentence) if it fails. */
export function useAction(): {
  error: string | null;
  setError: (error: string | null) => void;
  busy: boolean;
  run: (action: () => Promise<void>) => Promise<void>;
} {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };
  return { error, setError, busy, run };
}
