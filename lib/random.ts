/**
 * A small seeded random stream for the few values made in TypeScript (control patterns): the
 * same seed and index give the same numbers on every machine.
 * @module
 */

/**
 * Uniform and normal numbers from mulberry32, keyed by a seed and a stream index.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SeededRandom } from "./random.ts";
 * const a = new SeededRandom(1, 2).normal(), b = new SeededRandom(1, 2).normal();
 * assert.ok(a === b);
 * ```
 */
export class SeededRandom {
  #state: number;

  /** @param seed run seed @param index stream index, so each use has its own stream */
  constructor(seed: number, index = 0) {
    this.#state = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  }

  /** @returns a number in [0, 1) */
  uniform(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** @returns a standard normal number (Box-Muller) */
  normal(): number {
    const u = 1 - this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
}
