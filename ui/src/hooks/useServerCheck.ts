// Runs a server call for the latest value only (debounced, earlier calls aborted): live
// validation and the preview.
import { useEffect, useState } from "react";
import { useDebounced } from "./useDebounced";

export interface ServerCheck<R> {
  result: R | null;
  pending: boolean;
  error: string | null;
}

export function useServerCheck<T, R>(value: T, run: (value: T, signal: AbortSignal) => Promise<R>, delay: number, enabled = true): ServerCheck<R> {
  const debounced = useDebounced(value, delay);
  const [state, setState] = useState<ServerCheck<R>>({ result: null, pending: false, error: null });
  useEffect(() => {
    if (!enabled) return undefined;
    const controller = new AbortController();
    setState((s) => ({ ...s, pending: true }));
    run(debounced, controller.signal).then(
      (result) => !controller.signal.aborted && setState({ result, pending: false, error: null }),
      (error: Error) => !controller.signal.aborted && setState((s) => ({ ...s, pending: false, error: error.message })),
    );
    return () => controller.abort();
    // `run` is stable for a given API client
  }, [debounced, enabled]);
  const stale = value !== debounced;
  return { ...state, pending: state.pending || (enabled && stale) };
}
