/**
 * `deno task <name> …` starts here: re-runs the task's script with its own permissions plus write
 * access to the folder the user named with `--out`, wherever it is. A task's fixed
 * `--allow-write` could not reach a data disk or an experiment folder; `--allow-write` for
 * everything would give every task the whole disk.
 *
 * Itself it may only run `deno` and read `INIT_CWD` (where `deno task` was started).
 * @module
 */
import { launchArgs } from "../lib/tasks.ts";

const [name, ...args] = Deno.args;
let cmdArgs: string[];
try {
  cmdArgs = launchArgs(name, args, Deno.env.get("INIT_CWD"));
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(2);
}
// Ctrl-C reaches the script too; wait for it to save and exit rather than orphaning it.
Deno.addSignalListener("SIGINT", () => {});
const child = new Deno.Command("deno", { args: cmdArgs, stdin: "inherit" }).spawn();
Deno.exit((await child.status).code);
