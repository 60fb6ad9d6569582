/** Status codes returned by every native export; mirrors `native/src/error.rs`. */
export const StatusCode = {
  Ok: 0,
  InvalidArgument: 1,
  BadHandle: 2,
  Shape: 3,
  UnknownModel: 4,
  NotFinite: 5,
  Io: 6,
  Tensor: 7,
  Panic: 8,
} as const;

/** A status code of the native library. */
export type StatusCode = typeof StatusCode[keyof typeof StatusCode];

const codeNames = Object.fromEntries(Object.entries(StatusCode).map(([k, v]) => [v, k]));

/**
 * An error raised by the native library, carrying its status code and message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NativeError, StatusCode } from "./errors.ts";
 * const e = new NativeError(StatusCode.Shape, "predict: expected 784 values");
 * assert.ok(e.codeName === "Shape");
 * ```
 */
export class NativeError extends Error {
  /** The numeric status code. */
  readonly code: StatusCode;
  /** @param code status code @param message the native message */
  constructor(code: StatusCode, message: string) {
    super(message);
    this.name = "NativeError";
    this.code = code;
  }
  /** The status code's name, e.g. `"BadHandle"`. */
  get codeName(): string {
    return codeNames[this.code] ?? `Unknown(${this.code})`;
  }
}

/** The native library could not be found, built or opened. */
export class LibraryNotFoundError extends Error {
  /** @param message what was tried and how to fix it @param options the underlying cause */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LibraryNotFoundError";
  }
}

/** Throws a `NativeError` for a non-zero status, with the message from `errBuf`. */
export function unwrap(status: number, errBuf: Uint8Array): void {
  if (status === StatusCode.Ok) return;
  const end = errBuf.indexOf(0);
  const message = new TextDecoder().decode(errBuf.subarray(0, end < 0 ? errBuf.length : end));
  throw new NativeError(
    status as StatusCode,
    message || `native call failed with status ${status}`,
  );
}
