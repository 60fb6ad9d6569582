/**
 * The permissions of each CLI task, defined once: the launcher grants them, `--help` prints them,
 * and a refused permission is explained with the command that works.
 *
 * A task may write only to its own folders inside the checkout, plus the folders the user names
 * with its write flags (`--out`): the launcher adds exactly those to `--allow-write`.
 * @module
 */

/** One task's script and the Deno permissions it runs with. */
export interface TaskSpec {
  script: string;
  /** Arguments always passed first (e.g. `sta` is `noise_maps.ts --only sta`). */
  fixedArgs?: string[];
  ffi: boolean;
  /** Programs it may run: cargo builds the native library on first use. */
  run: string[];
  /** Folders inside the checkout it may write. */
  write: string[];
  net: boolean;
  /** Flags whose value is a path; relative ones are taken from the folder the user is in. */
  pathFlags: string[];
  /** Path flags whose folder the task writes. */
  writeFlags: string[];
}

const ANALYSIS: Omit<TaskSpec, "script"> = {
  ffi: true,
  run: ["cargo"],
  write: ["out", "checkpoints", ".cache"],
  net: true,
  pathFlags: ["out", "data-dir", "checkpoint", "onnx"],
  writeFlags: ["out"],
};

const STUDY: Omit<TaskSpec, "script"> = {
  ffi: true,
  run: ["cargo"],
  write: ["out", ".cache"],
  net: false,
  pathFlags: ["out", "data-dir"],
  writeFlags: ["out"],
};

/** The tasks started through `scripts/launch.ts`, by `deno task` name. */
export const TASKS: Record<string, TaskSpec> = {
  train: { ...ANALYSIS, script: "scripts/train.ts" },
  "noise-maps": { ...ANALYSIS, script: "scripts/noise_maps.ts" },
  sta: { ...ANALYSIS, script: "scripts/noise_maps.ts", fixedArgs: ["--only", "sta"] },
  fgsm: { ...ANALYSIS, script: "scripts/fgsm.ts" },
  zoo: { ...STUDY, script: "scripts/zoo.ts" },
  augment: { ...STUDY, script: "scripts/augment.ts" },
  // Runs the PyTorch peer, when `deno task bench` has installed it, to time the population.
  confidence: {
    ...STUDY,
    script: "scripts/confidence.ts",
    run: ["cargo", "bench/.venv/bin/python"],
  },
  backdoor: { ...STUDY, script: "scripts/backdoor.ts" },
  visualise: { ...ANALYSIS, script: "scripts/visualise.ts" },
  tsne: { ...STUDY, script: "scripts/tsne.ts", pathFlags: ["input", "labels", "out", "data-dir"] },
  import: {
    ...ANALYSIS,
    script: "scripts/import.ts",
    net: false,
    pathFlags: ["spec", "weights", "onnx", "out", "data-dir"],
  },
  // Writes checkpoints/ when it has to train its judging classifier.
  gan: {
    ...STUDY,
    script: "scripts/gan.ts",
    write: ["out", "checkpoints", ".cache"],
    pathFlags: ["out", "data-dir", "classifier"],
  },
  bench: {
    script: "scripts/bench.ts",
    ffi: true,
    run: ["cargo", "python3", "bench/.venv/bin/python"],
    write: ["out", "bench/.venv", ".cache"],
    net: false,
    pathFlags: ["out", "python"],
    writeFlags: ["out"],
  },
};

/** The task whose script is `script` (a path ending in `scripts/<name>.ts`), if any. */
export function taskOfScript(script: string): [string, TaskSpec] | undefined {
  return Object.entries(TASKS).find(([, t]) => script.endsWith(t.script) && !t.fixedArgs);
}

/** `deno run` flags of a task, with `extraWrite` folders added to `--allow-write`. */
export function permissionFlags(task: TaskSpec, extraWrite: string[] = []): string[] {
  const flags = ["--allow-read", "--allow-env"];
  if (task.ffi) flags.push("--allow-ffi");
  if (task.run.length) flags.push(`--allow-run=${task.run.join(",")}`);
  if (task.net) flags.push("--allow-net");
  const write = [...task.write, ...extraWrite.filter((w) => !task.write.includes(w))];
  flags.push(`--allow-write=${write.join(",")}`);
  return flags;
}

/** The lines `--help` prints about a task's permissions. */
export function permissionsHelp(name: string): string {
  const task = TASKS[name];
  const writes = task.writeFlags.map((f) => `--${f}`).join(", ");
  return [
    "permissions:",
    `  ${permissionFlags(task).join(" ")}`,
    `  writes only to ${
      task.write.join(", ")
    } (in the wna checkout) and the folder given by ${writes}`,
    "  (`deno task` grants that folder; relative paths are taken from where you run it)",
  ].join("\n");
}

/** Where a path flag's value is: `--name value` or `--name=value`. */
function flagValues(args: string[], name: string): { index: number; value: string }[] {
  const found: { index: number; value: string }[] = [];
  args.forEach((a, i) => {
    if (a === `--${name}` && i + 1 < args.length) found.push({ index: i + 1, value: args[i + 1] });
    else if (a.startsWith(`--${name}=`)) found.push({ index: i, value: a.slice(name.length + 3) });
  });
  return found;
}

/**
 * The full `deno run` command line of a task: relative path flags resolved against `userDir`
 * (where the user ran `deno task`; kept relative without it), and the folders of the write flags
 * granted.
 */
export function launchArgs(name: string, args: string[], userDir?: string): string[] {
  const task = TASKS[name];
  if (!task) {
    throw new TypeError(`unknown task "${name}" (expected ${Object.keys(TASKS).join(", ")})`);
  }
  const resolved = [...args];
  const extraWrite: string[] = [];
  for (const flag of task.pathFlags) {
    for (const { index, value } of flagValues(args, flag)) {
      const path = value.startsWith("/") || !userDir
        ? value
        : `${userDir.replace(/\/$/, "")}/${value}`;
      resolved[index] = resolved[index].startsWith("--") ? `--${flag}=${path}` : path;
      if (task.writeFlags.includes(flag)) extraWrite.push(path);
    }
  }
  return [
    "run",
    ...permissionFlags(task, extraWrite),
    task.script,
    ...(task.fixedArgs ?? []),
    ...resolved,
  ];
}
