/** Calls its listener at most once, even when death is reported before anyone listens. */
export class DeathWatch {
  #listener: ((err: Error) => void) | undefined;
  #error: Error | undefined;

  fire = (err: Error): void => {
    if (this.#error) return;
    this.#error = err;
    this.#listener?.(err);
  };

  listen = (listener: (err: Error) => void): void => {
    this.#listener = listener;
    if (this.#error) listener(this.#error);
  };
}
