// wna used as a newcomer would, from a folder of their own: the library imported from there, the
// tasks writing where the user points them, and every refused permission explained.
import assert from "node:assert/strict";
import { TASKS } from "../lib/tasks.ts";

const root = new URL("../", import.meta.url).pathname;
const decoder = new TextDecoder();

async function deno(args: string[], cwd: string) {
  // As from a fresh shell: `deno task test` sets INIT_CWD, which a nested `deno task` keeps.
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  const out = await new Deno.Command("deno", {
    args,
    cwd,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("outside: the quickstart runs from a folder outside the checkout", async () => {
  const dir = await Deno.makeTempDir();
  assert.ok(!dir.startsWith(root), "the temporary folder is outside the checkout");
  const source = await Deno.readTextFile(`${root}examples/quickstart.ts`);
  await Deno.writeTextFile(
    `${dir}/mine.ts`,
    source.replace(`from "../mod.ts"`, `from "${new URL("mod.ts", `file://${root}`).href}"`),
  );
  const r = await deno(
    ["run", "--allow-ffi", "--allow-read", "--allow-env", "--allow-run=cargo", "mine.ts"],
    dir,
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(out.accuracy > 0.8, `accuracy ${out.accuracy}`);
  assert.equal(out.counts.reduce((a: number, b: number) => a + b, 0), 2000);
  await Deno.remove(dir, { recursive: true });
});

const trainArgs = ["--model", "logreg", "--limit", "300", "--epochs", "1", "--seed", "2"];

Deno.test("outside: deno task writes --out where the user is, relative paths included", async () => {
  const dir = await Deno.makeTempDir();
  const r = await deno(
    ["task", "--config", `${root}deno.json`, "train", ...trainArgs, "--out", "results/ck"],
    dir,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await Deno.stat(`${dir}/results/ck/best.safetensors`)).isFile);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("outside: a refused write names the task's folders and the command that works", async () => {
  const dir = await Deno.makeTempDir();
  const flags = [
    "--allow-read",
    "--allow-env",
    "--allow-ffi",
    "--allow-run=cargo",
    "--allow-net",
    "--allow-write=out,checkpoints,.cache",
  ];
  const refused = await deno(
    ["run", ...flags, "scripts/train.ts", ...trainArgs, "--out", dir],
    root,
  );
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`scripts/train.ts was refused write access to "${dir}"`));
  assert.match(refused.stderr, /may write only to out, checkpoints, .cache and the folder given/);
  const command = refused.stderr.match(/^ {2}deno run (.*)$/m)?.[1];
  assert.ok(command, refused.stderr);
  assert.ok(command.includes(`--allow-write=out,checkpoints,.cache,${dir}`), command);
  // The advice is followed to the letter, and it works.
  const followed = await deno(["run", ...command.split(" ")], root);
  assert.equal(followed.code, 0, followed.stderr);
  assert.ok((await Deno.stat(`${dir}/best.safetensors`)).isFile);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("outside: refused network and cargo name the flag and the task that has it", async () => {
  const dir = await Deno.makeTempDir();
  const url = (p: string) => new URL(p, `file://${root}`).href;
  await Deno.writeTextFile(
    `${dir}/refused.ts`,
    `import { buildNative } from "${url("ffi/library.ts")}";
import { downloadIdx } from "${url("data/download.ts")}";
for (const attempt of [
  () => buildNative("a test"),
  () => downloadIdx("https://ossci-datasets.s3.amazonaws.com/mnist/", "t10k-labels-idx1-ubyte", "0", "${dir}/dl"),
]) {
  try { await attempt(); console.log("allowed"); } catch (e) { console.log(e.message); }
}`,
  );
  const r = await deno(["run", "--allow-read", "refused.ts"], dir);
  assert.equal(r.code, 0, r.stderr);
  const [build, download] = r.stdout.trim().split("\n");
  assert.match(
    build,
    /may not run cargo: grant --allow-run=cargo, or build it once with `deno task build`/,
  );
  assert.match(
    download,
    /needs network access: run with --allow-net=ossci-datasets.s3.amazonaws.com, or fetch the datasets once with `deno task data`/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("outside: every task has a description; launched tasks and their scripts exist", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  for (const [name, task] of Object.entries(config.tasks) as [string, Record<string, string>][]) {
    assert.ok(task.description?.length > 10, `task ${name} has no description`);
    const launched = task.command.match(/scripts\/launch.ts (\S+)$/)?.[1];
    if (launched) assert.equal(launched, name, `task ${name} launches ${launched}`);
    if (launched) assert.ok(TASKS[name], `task ${name} is not in lib/tasks.ts`);
  }
  for (const [name, task] of Object.entries(TASKS)) {
    assert.ok((await Deno.stat(`${root}${task.script}`)).isFile, `${name}: ${task.script}`);
    assert.ok(config.tasks[name], `lib/tasks.ts has ${name}, deno.json does not`);
  }
});

Deno.test("outside: every script's --help says what it may do and where it writes", async () => {
  for await (const e of Deno.readDir(`${root}scripts`)) {
    if (e.name === "launch.ts") continue;
    const r = await deno(["run", "-A", `scripts/${e.name}`, "--help"], root);
    assert.equal(r.code, 0, `${e.name}: ${r.stderr}`);
    assert.match(r.stdout, /permissions/, e.name);
    assert.match(r.stdout, /--allow-|-A/, e.name);
    assert.match(r.stdout, /writ/, e.name);
  }
});
