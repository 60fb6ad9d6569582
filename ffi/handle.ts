/**
 * `NativeHandle`: what every class that owns a native object shares. The object is freed by
 * `close()` (or `using`), or, as a backstop, when its owner is garbage-collected unclosed.
 * @module
 */
import { NativeError, StatusCode } from "./errors.ts";
import { call, freeQuietly } from "./native.ts";

/** Frees a native handle whose owner was garbage-collected without `close()`. */
const unclosed = new FinalizationRegistry<bigint>((handle) => {
  try {
    freeQuietly(handle);
  } catch { /* the process is going away */ }
});

/** A native object owned by this JS object. Free it with `using` or `close()`. */
export abstract class NativeHandle implements Disposable {
  #handle: bigint | undefined;
  readonly #what: string;

  /**
   * @param handle what the native constructor returned
   * @param what names the object in the error of a use after `close()`
   */
  protected constructor(handle: bigint, what: string) {
    this.#handle = handle;
    this.#what = what;
    unclosed.register(this, handle, this);
  }

  /** The native handle; throws once closed. */
  get handle(): bigint {
    if (this.#handle === undefined) {
      throw new NativeError(StatusCode.BadHandle, `${this.#what}: used after close()`);
    }
    return this.#handle;
  }

  /** Frees the native object; idempotent. */
  close(): void {
    if (this.#handle === undefined) return;
    const h = this.#handle;
    this.#handle = undefined;
    unclosed.unregister(this);
    call("wna_free", h);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
