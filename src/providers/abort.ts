// Bounding driver work by an AbortSignal (the executor's step timeout).

/** The error an aborted operation rejects with: the signal's reason (the executor's STEP_TIMEOUT). */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/**
 * Runs `work` and settles as soon as `signal` aborts, rejecting with its reason; `onAbort` then
 * gets a chance to stop the work on the server (cancel the query, drop the connection).
 * A late result or error of `work` is swallowed, so nothing is left unhandled.
 */
export function abortable<T>(
  work: () => Promise<T>,
  signal: AbortSignal | undefined,
  onAbort?: () => void,
): Promise<T> {
  if (!signal) return work();
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const aborted = (): void => {
      reject(abortReason(signal));
      onAbort?.();
    };
    signal.addEventListener('abort', aborted, { once: true });
    Promise.resolve()
      .then(work)
      .then(
        (value) => {
          signal.removeEventListener('abort', aborted);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', aborted);
          reject(err);
        },
      );
  });
}
