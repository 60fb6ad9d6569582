/**
 * A headless Chromium driven over the Chrome DevTools protocol, for checking a report as a
 * reader sees it: layout overflow, images, console errors, and a screenshot.
 * @module
 */
import { chromiumCandidates, findChromium } from "../lib/chromium.ts";

/** What a page check found. */
export interface PageCheck {
  /** Elements whose right edge passes the viewport's width. */
  overflowing: string[];
  /** The document's scroll width and the viewport's width. */
  scrollWidth: number;
  viewportWidth: number;
  images: number;
  brokenImages: string[];
  consoleErrors: string[];
  screenshot: Uint8Array;
}

/** How long each step of a page check may take before it fails, in ms: a browser that hangs
 * fails the test that drove it instead of stalling the suite. */
const STEP_TIMEOUT_MS = 60_000;

/** `promise`, or a rejection naming `what` after `ms` (the timer is cleared either way). */
async function within<T>(promise: Promise<T>, what: string, ms = STEP_TIMEOUT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`chromium: ${what} took longer than ${ms / 1000} s`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The browser binary, or an error that names where it looked and the fix. */
export function chromiumPath(): string {
  const found = findChromium();
  if (found) return found;
  throw new Error(
    `no Chromium found (looked at ${chromiumCandidates().join(", ")}). Fix: ` +
      "`deno task data --browser` (installs Debian's chromium as root) or set WNA_CHROMIUM.",
  );
}

/** Opens `url` at `width` x `height` CSS pixels and checks it. */
export async function checkPage(url: string, width = 1000, height = 900): Promise<PageCheck> {
  const profile = await Deno.makeTempDir();
  const browser = new Deno.Command(chromiumPath(), {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      `--window-size=${width},${height}`,
      "about:blank",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const endpoint = await within(devtoolsEndpoint(browser.stderr), "starting");
    const port = new URL(endpoint).port;
    const list = await fetch(`http://127.0.0.1:${port}/json/list`, {
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const pages = await list.json() as {
      type: string;
      webSocketDebuggerUrl: string;
    }[];
    const page = pages.find((p) => p.type === "page");
    if (!page) throw new Error("chromium: no page target");
    const cdp = await within(Cdp.open(page.webSocketDebuggerUrl), "connecting");
    try {
      const consoleErrors: string[] = [];
      cdp.on("Runtime.consoleAPICalled", (p) => {
        if (p.type === "error") consoleErrors.push(JSON.stringify(p.args));
      });
      cdp.on(
        "Runtime.exceptionThrown",
        (p) => consoleErrors.push(JSON.stringify(p.exceptionDetails)),
      );
      cdp.on("Log.entryAdded", (p) => {
        if (p.entry.level === "error") consoleErrors.push(p.entry.text);
      });
      await cdp.send("Runtime.enable");
      await cdp.send("Log.enable");
      await cdp.send("Page.enable");
      const loaded = cdp.once("Page.loadEventFired");
      await cdp.send("Page.navigate", { url });
      await within(loaded, `loading ${url}`);
      const facts = await cdp.send("Runtime.evaluate", {
        returnByValue: true,
        expression: `(() => {
          const vw = document.documentElement.clientWidth;
          const overflowing = [...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > vw + 1 && !e.closest(".scroll"))
            .map((e) => e.tagName + (e.className ? "." + e.className : ""));
          const imgs = [...document.images];
          return {
            overflowing,
            scrollWidth: document.documentElement.scrollWidth,
            viewportWidth: vw,
            images: imgs.length,
            brokenImages: imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.alt),
          };
        })()`,
      });
      const shot = await cdp.send("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: true,
      });
      return {
        ...facts.result.value,
        consoleErrors,
        screenshot: Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0)),
      };
    } finally {
      cdp.close();
    }
  } finally {
    browser.kill();
    await browser.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

async function devtoolsEndpoint(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  const reader = stderr.getReader();
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`chromium exited before it listened: ${text.slice(-500)}`);
    text += decoder.decode(value);
    const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) {
      // Keep draining stderr so the browser never blocks on a full pipe.
      (async () => {
        while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
      })();
      return m[1];
    }
  }
}

// deno-lint-ignore no-explicit-any
type Params = any;

/** A minimal CDP client: numbered requests, and event listeners. */
class Cdp {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, { resolve: (v: Params) => void; reject: (e: Error) => void }>();
  #listeners = new Map<string, ((p: Params) => void)[]>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data as string);
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`cdp: ${JSON.stringify(msg.error)}`));
        else p?.resolve(msg.result);
      } else {
        for (const f of this.#listeners.get(msg.method) ?? []) f(msg.params);
      }
    };
  }

  static open(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    return new Promise((resolve, reject) => {
      ws.onopen = () => resolve(new Cdp(ws));
      ws.onerror = () => reject(new Error(`cdp: cannot connect to ${url}`));
    });
  }

  send(method: string, params: Params = {}): Promise<Params> {
    const id = this.#next++;
    this.#ws.send(JSON.stringify({ id, method, params }));
    return within(
      new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject })),
      method,
    );
  }

  on(method: string, f: (p: Params) => void): void {
    this.#listeners.set(method, [...(this.#listeners.get(method) ?? []), f]);
  }

  once(method: string): Promise<Params> {
    return new Promise((resolve) => this.on(method, resolve));
  }

  close(): void {
    this.#ws.close();
  }
}
