/**
 * A progress bar with ETA on a terminal, plain lines (every 10%) otherwise.
 * @module
 */

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s % 60).toString().padStart(2, "0")}s` : `${s.toFixed(0)}s`;
}

/**
 * Reports progress of one long step.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressBar } from "./progress.ts";
 * const lines: string[] = [];
 * const bar = new ProgressBar("demo", { tty: false, write: (s) => lines.push(s) });
 * bar.update(5, 10);
 * bar.done("ok");
 * assert.match(lines.join(""), /^demo: 50% \(5\/10\)/);
 * ```
 */
export class ProgressBar {
  #label: string;
  #start = performance.now();
  #tty: boolean;
  #lastDecile = -1;
  #write: (s: string) => void;

  /** @param label what is running @param options tty override and output sink */
  constructor(label: string, options: { tty?: boolean; write?: (s: string) => void } = {}) {
    this.#label = label;
    this.#tty = options.tty ?? Deno.stderr.isTerminal();
    this.#write = options.write ??
      ((s) => Deno.stderr.writeSync(new TextEncoder().encode(s)));
  }

  /** Shows `done` of `total`. */
  update(done: number, total: number): void {
    if (total <= 0) return;
    const frac = Math.min(1, done / total);
    const elapsed = (performance.now() - this.#start) / 1000;
    const eta = frac > 0 ? elapsed * (1 - frac) / frac : Infinity;
    if (this.#tty) {
      const width = 30;
      const fill = Math.round(frac * width);
      this.#write(
        `\r${this.#label} [${"#".repeat(fill)}${"-".repeat(width - fill)}] ${
          (frac * 100).toFixed(0).padStart(3)
        }% ${done}/${total} ETA ${fmtTime(eta)}   `,
      );
    } else {
      const decile = Math.floor(frac * 10);
      if (decile > this.#lastDecile && decile < 10) {
        this.#lastDecile = decile;
        this.#write(`${this.#label}: ${decile * 10}% (${done}/${total}), ETA ${fmtTime(eta)}\n`);
      }
    }
  }

  /** Ends the bar with a summary line. */
  done(summary = ""): void {
    const elapsed = (performance.now() - this.#start) / 1000;
    this.#write(
      `${this.#tty ? "\r\x1b[K" : ""}${this.#label}: done in ${fmtTime(elapsed)}${
        summary ? ` — ${summary}` : ""
      }\n`,
    );
  }

  /** A callback for the native progress counters. */
  get callback(): (done: number, total: number) => void {
    return (d, t) => this.update(d, t);
  }
}
