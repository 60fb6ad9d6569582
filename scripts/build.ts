/**
 * `deno task build`: builds the native library (CPU) with cargo.
 * @module
 */
import { buildNative, localLibraryPath } from "../ffi/library.ts";

buildNative("deno task build");
console.log(`built ${localLibraryPath("cpu")}`);
