/**
 * `deno task build`: builds the native library (CPU) with cargo.
 * @module
 */
import { buildNative, localLibraryPath } from "../ffi/library.ts";

if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(`usage: deno task build
permissions: --allow-run=cargo --allow-read=. --allow-env; cargo writes only to native/target`);
  Deno.exit(0);
}

buildNative("deno task build");
console.log(`built ${localLibraryPath("cpu")}`);
