/**
 * `deno task build:cuda`: builds the CUDA variant of the native library on a machine without a
 * GPU. nvcc, the headers and the CUDA 13 libraries come from NVIDIA's PyPI wheels, installed into
 * `.cuda/` by this task; the library lands in `native/target-cuda/release/` beside (never over)
 * the CPU one, and `--device cuda` or `WNA_DEVICE=cuda` picks it at run time.
 *
 * candle 0.9.1 reaches the GPU through cudarc 0.16, whose newest bindings are CUDA 12.9's:
 * `CUDARC_CUDA_VERSION=12090` selects them, and the CUDA 13 driver and libraries keep those entry
 * points. cudarc links libcuda dynamically; the driver is not a wheel, so a stub with the driver's
 * soname stands in at link time and the GPU machine's own libcuda.so.1 answers at run time.
 * @module
 */
import { commonFlags, parseFlags, runMain } from "../lib/cli.ts";

const HELP = `usage: deno task build:cuda [options]
  --compute-cap N   GPU architecture (default $CUDA_COMPUTE_CAP or 90, Hopper: H100/H200)
  --python PATH     Python whose pip fetches the wheels (default python3)`;

const SITE = ".cuda/py";
/** The wheels unpack into one toolkit-shaped folder: bin/nvcc, include/, lib/, nvvm/. */
const TOOLKIT = `${SITE}/nvidia/cu13`;
const WHEELS = [
  "nvidia-cuda-nvcc==13.0.*",
  "nvidia-cuda-runtime==13.0.*",
  "nvidia-cuda-nvrtc==13.0.*",
  "nvidia-cublas==13.0.*",
  "nvidia-curand==10.4.*",
  // libcu++ (CCCL): cuda_fp16.h includes <nv/target>.
  "nvidia-cuda-cccl==13.0.*",
  // nvcc's own parts, pinned with it: a newer cicc writes PTX its ptxas cannot read.
  "nvidia-nvvm==13.0.*",
  "nvidia-cuda-crt==13.0.*",
];
/** Libraries cudarc links by their unversioned names. */
const LINKED = ["cublas", "cublasLt", "curand", "nvrtc", "cudart"];

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[], env?: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "inherit", stderr: "inherit" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.slice(0, 4).join(" ")} … failed (exit ${out.code})`);
  }
}

/**
 * Writes the link-time stand-in for the driver's libcuda.so.1. It must define every driver
 * function cudarc calls: a stub without them is dropped by the linker's --as-needed, and the
 * library then fails to load on the GPU machine ("undefined symbol: cuMemcpyHtoDAsync_v2").
 * The names come from cudarc's own bindings, found through `cargo metadata`.
 */
async function writeLibcudaStub(dir: string) {
  const meta = await new Deno.Command("cargo", {
    args: [
      "metadata",
      "--format-version",
      "1",
      "--manifest-path",
      "native/Cargo.toml",
      "--features",
      "cuda",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!meta.success) throw new Error("build:cuda: `cargo metadata` failed (is cargo installed?)");
  const packages = JSON.parse(new TextDecoder().decode(meta.stdout)).packages as {
    name: string;
    manifest_path: string;
  }[];
  const cudarc = packages.find((p) => p.name === "cudarc");
  if (!cudarc) throw new Error("build:cuda: cudarc is not in the cuda feature's dependencies");
  const bindings = cudarc.manifest_path.replace(/Cargo\.toml$/, "src/driver/sys/mod.rs");
  const names = [
    ...new Set(
      [...Deno.readTextFileSync(bindings).matchAll(/^\s*pub fn (cu\w+)\(/gm)].map((m) => m[1]),
    ),
  ].sort();
  if (names.length < 100) {
    throw new Error(`build:cuda: found only ${names.length} driver functions in ${bindings}`);
  }
  const source = names.map((n) => `void ${n}(void) {}`).join("\n") + "\n";
  Deno.mkdirSync(dir, { recursive: true });
  if (exists(`${dir}/libcuda.so`) && exists(`${dir}/stub.c`)) {
    if (Deno.readTextFileSync(`${dir}/stub.c`) === source) return;
  }
  Deno.writeTextFileSync(`${dir}/stub.c`, source);
  await run("cc", [
    "-shared",
    "-o",
    `${dir}/libcuda.so`,
    "-Wl,-soname,libcuda.so.1",
    `${dir}/stub.c`,
  ]);
  // The library linked against an older stub must be linked again.
  for (const lib of ["release/libwna.so", "release/deps/libwna.so"]) {
    try {
      Deno.removeSync(`native/target-cuda/${lib}`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/** What this script may do, for --help. */
const PERMISSIONS =
  `permissions (deno task build:cuda): --allow-run=python3,cargo,ln,cc --allow-read
  --allow-write=.cuda,native/target-cuda --allow-env; writes only to .cuda and native/target-cuda`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags(),
    "compute-cap": { type: "string" },
    python: { type: "string" },
  });
  if (values.help) return console.log(`${HELP}\n${PERMISSIONS}`);
  const cap = values["compute-cap"] ?? Deno.env.get("CUDA_COMPUTE_CAP") ?? "90";
  if (!/^\d{2,3}$/.test(cap)) {
    throw new RangeError(`invalid --compute-cap: "${cap}" (expected e.g. 80, 89, 90)`);
  }
  if (!exists(`${TOOLKIT}/bin/nvcc`)) {
    console.log(`installing nvcc and the CUDA 13 libraries from PyPI into ${SITE} (once)…`);
    await run(values.python ?? "python3", [
      "-m",
      "pip",
      "install",
      "--quiet",
      "--target",
      SITE,
      ...WHEELS,
    ]);
  }
  const toolkit = Deno.realPathSync(TOOLKIT);
  for (const lib of LINKED) {
    const versioned = [...Deno.readDirSync(`${toolkit}/lib`)]
      .map((e) => e.name)
      .find((n) => n.startsWith(`lib${lib}.so.`) && !n.includes("alt"));
    if (!versioned) throw new Error(`build:cuda: the wheels in ${SITE} lack lib${lib}.so`);
    if (!exists(`${toolkit}/lib/lib${lib}.so`)) {
      await run("ln", ["-s", versioned, `${toolkit}/lib/lib${lib}.so`]);
    }
  }
  await writeLibcudaStub(`${toolkit}/lib/stubs`);
  console.log(`building the CUDA library for compute capability ${cap} (several minutes once)…`);
  await run("cargo", [
    "build",
    "--release",
    "--features",
    "cuda",
    "--manifest-path",
    "native/Cargo.toml",
    "--target-dir",
    "native/target-cuda",
  ], {
    CUDA_ROOT: toolkit,
    CUDA_PATH: toolkit,
    CUDA_COMPUTE_CAP: cap,
    CUDARC_CUDA_VERSION: "12090",
    PATH: `${toolkit}/bin:${Deno.env.get("PATH") ?? ""}`,
  });
  console.log(
    "built native/target-cuda/release/libwna.so; run with --device cuda (or WNA_DEVICE=cuda)",
  );
});
