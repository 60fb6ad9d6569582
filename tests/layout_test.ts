/**
 * The tree's shape, checked: no import circles among the TypeScript modules, and each
 * feature's C ABI (`native/src/abi/<feature>.rs`) paired with its binding (`ffi/<feature>.ts`).
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

/** Every `.ts` file under `dir`, relative to the root. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(new URL(dir, root))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The relative modules `file` imports or re-exports, types included. */
function importsOf(file: string): string[] {
  const text = Deno.readTextFileSync(new URL(file, root));
  const found = [...text.matchAll(/^(?:import|export)[^;]*?from\s+"(\.{1,2}\/[^"]+)"/gms)];
  return found.map((m) => new URL(m[1], new URL(file, root)).pathname.slice(root.pathname.length));
}

/** A cycle in `graph` as a list of nodes, or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "open") return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, "open");
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of graph.keys()) {
    const c = visit(n);
    if (c) return c;
  }
}

Deno.test("layout: the cycle finder finds a planted circle", () => {
  const graph = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", []]]);
  assert.deepEqual(findCycle(graph), ["a", "b", "c", "a"]);
  assert.equal(findCycle(new Map([["a", ["b"]], ["b", []]])), undefined);
});

Deno.test("layout: no TypeScript module imports itself through others", () => {
  const files = ["ffi", "lib", "data", "scripts"].flatMap(tsFiles).concat("mod.ts");
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  assert.ok(graph.get("ffi/model.ts")!.includes("ffi/noise.ts"), "the parser sees imports");
  assert.equal(findCycle(graph)?.join(" -> "), undefined);
});

Deno.test("layout: each abi/<feature>.rs has its ffi/<feature>.ts", () => {
  const abi = [...Deno.readDirSync(new URL("native/src/abi/", root))]
    .map((e) => e.name).filter((n) => n !== "mod.rs").map((n) => n.replace(/\.rs$/, ""));
  assert.ok(abi.length >= 8, `only ${abi.length} abi modules`);
  for (const feature of abi) {
    const binding = new URL(`ffi/${feature}.ts`, root);
    assert.ok(Deno.statSync(binding).isFile, `ffi/${feature}.ts`);
    // Each export of the abi file is declared for Deno and called from its binding.
    const rust = Deno.readTextFileSync(new URL(`native/src/abi/${feature}.rs`, root));
    const ts = Deno.readTextFileSync(binding);
    for (const [, name] of rust.matchAll(/^\s+fn (wna_\w+)\(/gm)) {
      if (name === "wna_debug_panic" || name === "wna_free") continue; // tests; handle.ts
      assert.match(ts, new RegExp(`"${name}"`), `${name} is not called from ffi/${feature}.ts`);
    }
  }
});
