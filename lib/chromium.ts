/**
 * Where the headless Chromium for the report check lives: `WNA_CHROMIUM`, else Debian's.
 * @module
 */

/** The paths tried, in order. */
export function chromiumCandidates(): string[] {
  const env = Deno.env.get("WNA_CHROMIUM");
  return [...(env ? [env] : []), "/usr/bin/chromium", "/usr/bin/chromium-browser"];
}

/** The first Chromium binary found, if any. */
export function findChromium(): string | undefined {
  return chromiumCandidates().find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}
