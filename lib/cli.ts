/**
 * What the scripts share: the common flags, parsed the same way everywhere; unknown flags
 * refused with the closest valid one; number flags checked with clear messages; and the exit
 * path for errors, which turns a refused permission into the command that works.
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { modelNames } from "../ffi/model.ts";
import { permissionFlags, taskOfScript } from "./tasks.ts";

/** The flags most tasks take, declared once. */
export const COMMON_FLAGS = {
  model: { type: "string" },
  dataset: { type: "string" },
  seed: { type: "string" },
  device: { type: "string" },
  out: { type: "string" },
  "data-dir": { type: "string" },
  checkpoint: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Common = typeof COMMON_FLAGS;

/** The named common flags, and `--help`, for a script's `parseFlags`. */
export function commonFlags<K extends keyof Common>(...names: K[]): Pick<Common, K | "help"> {
  const picked = { help: COMMON_FLAGS.help } as Record<string, unknown>;
  for (const n of names) picked[n] = COMMON_FLAGS[n];
  return picked as Pick<Common, K | "help">;
}

/** The datasets a task trains or analyses on. */
export const DATASETS = ["mnist", "fashion"] as const;
/** The devices a task runs on. */
export const DEVICES = ["cpu", "cuda", "auto"] as const;

/** `--model`: a built-in network's name, as the library lists them. */
export function modelFlag(value: string | undefined, fallback = "smaller"): string {
  return choiceFlag("model", value, modelNames(), fallback);
}

/** `--dataset`: mnist or fashion. */
export function datasetFlag(
  value: string | undefined,
  fallback: typeof DATASETS[number] = "mnist",
): typeof DATASETS[number] {
  return choiceFlag("dataset", value, DATASETS, fallback);
}

/** `--seed`: a whole number >= 0. */
export function seedFlag(value: string | undefined, fallback = 0): number {
  return numberFlag("seed", value, fallback, { integer: true, min: 0 });
}

/** `--device`: cpu, cuda or auto. */
export function deviceFlag(value: string | undefined): typeof DEVICES[number] {
  return choiceFlag("device", value, DEVICES, "cpu");
}

/** Edit distance between two flag names, for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

/** The valid flag closest to `name`, when it is close enough to be a typo. */
export function closestFlag(name: string, valid: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const v of valid) {
    const d = distance(name, v);
    if (d < bestDistance) [best, bestDistance] = [v, d];
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Throws for the first `--flag` in `args` that `options` does not declare, naming the closest. */
function rejectUnknown(options: ParseArgsOptionsConfig, args: readonly string[]): void {
  const valid = Object.keys(options);
  for (const a of args) {
    if (a === "--") return;
    const m = a.match(/^--([^=]+)/);
    if (!m || valid.includes(m[1])) continue;
    const near = closestFlag(m[1], valid);
    throw new TypeError(
      `unknown flag --${m[1]}${near ? ` (did you mean --${near}?)` : ""}; --help lists them`,
    );
  }
}

/**
 * `parseArgs` over `Deno.args`, where a negative number after a flag (`--samples -5`) is that
 * flag's value, so that the flag's own check names the problem; the parser alone would take
 * `-5` for an unknown short option. No wna flag has a digit as its short form.
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(options: T, args = Deno.args) {
  const joined: string[] = [];
  for (const a of args) {
    const prev = joined.at(-1);
    if (
      /^-\.?\d/.test(a) && prev?.startsWith("--") && !prev.includes("=") &&
      options[prev.slice(2)]?.type === "string"
    ) {
      joined[joined.length - 1] = `${prev}=${a}`;
    } else joined.push(a);
  }
  rejectUnknown(options, joined);
  return parseArgs({ args: joined, options });
}

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

/** Quotes an argument for a POSIX shell when it needs it. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

/**
 * Explains a refused permission: what the script asked for, what its task grants, and the
 * `deno run` command that would work. Deno's own advice ("run again with --allow-write") cannot
 * be followed through `deno task`, whose flags are fixed.
 */
export function permissionAdvice(err: Error, script = Deno.mainModule, args = Deno.args): string {
  const m = err.message.match(/Requires (\w+) access to "?([^",]+?)"?(,|$)/);
  if (!m) return err.message;
  const [, kind, target] = m;
  const scriptPath = script.match(/scripts\/[\w.-]+\.ts$/)?.[0] ?? script;
  const found = taskOfScript(scriptPath);
  const lines = [`${scriptPath} was refused ${kind} access to "${target}".`];
  if (found && kind === "write") {
    const [name, task] = found;
    const flags = task.writeFlags.map((f) => `--${f}`).join(", ");
    lines.push(
      `Its task may write only to ${task.write.join(", ")} and the folder given by ${flags}.`,
      `\`deno task ${name} ${task.writeFlags.map((f) => `--${f} DIR`).join(" ")}\` grants DIR; ` +
        "or run this, which grants the folder it asked for:",
      `  deno run ${
        [...permissionFlags(task, [target]), scriptPath, ...args].map(shellQuote).join(" ")
      }`,
    );
  } else {
    const grant = ["net", "run", "env", "write", "read"].includes(kind)
      ? `--allow-${kind}=${target}`
      : `--allow-${kind}`;
    if (found) {
      lines.push(
        `Run it with ${grant} added to its task's flags:`,
        `  deno run ${
          [...permissionFlags(found[1]), grant, scriptPath, ...args].map(shellQuote).join(" ")
        }`,
      );
    } else lines.push(`Add ${grant} to the flags it runs with.`);
  }
  return lines.join("\n");
}

/** Runs a script's main, printing errors as one clear line and exiting 1. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    const err = e as Error;
    const message = err instanceof Deno.errors.NotCapable ? permissionAdvice(err) : err.message;
    console.error(`error: ${message}`);
    if (Deno.env.get("WNA_DEBUG")) console.error(err.stack);
    Deno.exit(1);
  }
}
