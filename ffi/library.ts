/**
 * Locates, builds on first use and opens the native library.
 * @module
 */
import { LibraryNotFoundError } from "./errors.ts";

const root = new URL("../", import.meta.url);
const libName = Deno.build.os === "windows"
  ? "wna.dll"
  : Deno.build.os === "darwin"
  ? "libwna.dylib"
  : "libwna.so";

/** Where `cargo build --release` puts the library, and where the CUDA build goes. */
export function localLibraryPath(variant: "cpu" | "cuda" = "cpu"): string {
  const dir = variant === "cuda" ? "native/target-cuda/release/" : "native/target/release/";
  return new URL(dir + libName, root).pathname;
}

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return -1;
  }
}

function newestSource(): number {
  let newest = mtime(new URL("native/Cargo.toml", root).pathname);
  const walk = (dir: string) => {
    if (mtime(dir) < 0) return;
    for (const e of Deno.readDirSync(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) walk(p);
      else newest = Math.max(newest, mtime(p));
    }
  };
  walk(new URL("native/src", root).pathname);
  // The patched candle-core (native/vendor) is built into the library too.
  walk(new URL("native/vendor", root).pathname);
  return newest;
}

/** Runs `cargo build --release` in `native/`, printing one line first. */
export function buildNative(reason: string): void {
  console.error(`wna: building the native library (${reason}); this takes a few minutes once…`);
  let out;
  try {
    out = new Deno.Command("cargo", {
      args: ["build", "--release", "--manifest-path", new URL("native/Cargo.toml", root).pathname],
      stdout: "inherit",
      stderr: "inherit",
    }).outputSync();
  } catch (cause) {
    if (cause instanceof Deno.errors.NotCapable) {
      throw new LibraryNotFoundError(
        `wna: the native library must be built (${reason}), and this process may not run ` +
          "cargo: grant --allow-run=cargo, or build it once with `deno task build` in the wna " +
          "checkout, or set WNA_NATIVE_LIB to a built libwna",
        { cause },
      );
    }
    throw new LibraryNotFoundError(
      "wna: cannot run cargo to build the native library; install Rust (https://rustup.rs) " +
        "or set WNA_NATIVE_LIB to a built libwna",
      { cause },
    );
  }
  if (!out.success) {
    throw new LibraryNotFoundError(
      `wna: cargo build failed (exit ${out.code}); see the compiler output above`,
    );
  }
}

/**
 * Resolves the library path: `WNA_NATIVE_LIB`, else the CUDA build when asked for, else the local
 * CPU build (rebuilt when missing or older than `native/src`).
 */
export function resolveLibrary(device: "cpu" | "cuda" | "auto" = "cpu"): string {
  const tried: string[] = [];
  const override = Deno.env.get("WNA_NATIVE_LIB");
  if (override) {
    if (mtime(override) >= 0) return override;
    throw new LibraryNotFoundError(
      `wna: WNA_NATIVE_LIB points at ${override}, which does not exist; unset it or build ` +
        "the library with `deno task build`",
    );
  }
  if (device !== "cpu") {
    const cuda = localLibraryPath("cuda");
    tried.push(cuda);
    if (mtime(cuda) >= 0) return cuda;
    if (device === "cuda") {
      throw new LibraryNotFoundError(
        `wna: no CUDA build at ${cuda}; run \`deno task build:cuda\` (tried: ${tried.join(", ")})`,
      );
    }
  }
  const cpu = localLibraryPath("cpu");
  tried.push(cpu);
  const built = mtime(cpu);
  const hasSources = mtime(new URL("native/src", root).pathname) >= 0;
  if (hasSources && (built < 0 || built < newestSource())) {
    buildNative(built < 0 ? "not built yet" : "native sources changed");
  }
  if (mtime(cpu) >= 0) return cpu;
  throw new LibraryNotFoundError(
    `wna: native library not found (tried: ${tried.join(", ")}); run \`deno task build\` ` +
      "or set WNA_NATIVE_LIB",
  );
}
