/**
 * Small helpers shared by the scripts: number flags checked with clear messages, and the exit
 * path for errors, which turns a refused permission into the command that works.
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { permissionFlags, taskOfScript } from "./tasks.ts";

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
