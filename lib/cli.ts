/**
 * Small helpers shared by the scripts: number flags checked with clear messages, and the exit
 * path for errors.
 * @module
 */

/** Parses a numeric flag, rejecting junk with the flag's name. */
export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  { integer = false, min = -Infinity, max = Infinity } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (
    value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min ||
    n > max
  ) {
    throw new RangeError(
      `invalid --${name}: "${value}" (expected ${integer ? "a whole number" : "a number"}${
        min > -Infinity ? ` >= ${min}` : ""
      }${max < Infinity ? ` <= ${max}` : ""})`,
    );
  }
  return n;
}

/** Parses a comma-separated list of numbers. */
export function numberList(name: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  return value.split(",").map((v) => numberFlag(name, v, NaN));
}

/** Checks an enum-like flag. */
export function choiceFlag<T extends string>(
  name: string,
  value: string | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new TypeError(`invalid --${name}: "${value}" (expected ${choices.join(", ")})`);
  }
  return value as T;
}

/** Runs a script's main, printing errors as one clear line and exiting 1. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    const err = e as Error;
    console.error(`error: ${err.message}`);
    if (Deno.env.get("WNA_DEBUG")) console.error(err.stack);
    Deno.exit(1);
  }
}
