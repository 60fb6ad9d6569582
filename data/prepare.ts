/**
 * Making a dataset available on a fresh machine: a local copy if there is one, else the Debian
 * package (Fashion-MNIST, when apt can install as root), else the canonical URLs, checked
 * against the pinned SHA-256 sums, with a progress line.
 * @module
 */
import { type DatasetName, datasetSpec, findDataset, splitFiles } from "./datasets.ts";
import { downloadIdx } from "./download.ts";

/** Options of {@linkcode prepareDataset}. */
export interface PrepareOptions {
  /** A folder with the four IDX files, tried first. */
  dataDir?: string;
  /** Folder for downloads. @default ".cache/datasets/<name>" in the project */
  cacheDir?: string;
  /** Try the Debian package when running as root with apt-get. @default true */
  apt?: boolean;
  /** Base URL of the `.gz` files. @default the dataset's canonical URL */
  baseUrl?: string;
  /** @default console.log */
  log?: (line: string) => void;
}

/** Where a prepared dataset came from. */
export interface Prepared {
  name: DatasetName;
  folder: string;
  how: "found" | "apt" | "download";
}

/** Whether `apt-get install` can run here (root, with apt-get). */
export function isRootWithApt(): boolean {
  try {
    return Deno.uid() === 0 && Deno.statSync("/usr/bin/apt-get").isFile;
  } catch {
    return false;
  }
}

/** Installs a Debian package; false when apt-get fails. */
export async function aptInstall(
  pkg: string,
  log: (line: string) => void,
): Promise<boolean> {
  const run = async (args: string[]) =>
    (await new Deno.Command("apt-get", {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
    }).output()).success;
  log(`installing the Debian package ${pkg} (apt-get)`);
  // A fresh image often has empty package lists: update once when the first try fails.
  return await run(["install", "-y", "-qq", pkg]) ||
    (await run(["update", "-qq"]) && await run(["install", "-y", "-qq", pkg]));
}

/**
 * Makes every file of a dataset available, fetching what is missing.
 *
 * @param name "mnist" or "fashion"
 * @param options data folder, cache, apt, base URL
 * @returns the folder the files are in and how they got there
 */
export async function prepareDataset(
  name: DatasetName,
  options: PrepareOptions = {},
): Promise<Prepared> {
  const { log = console.log } = options;
  const spec = datasetSpec(name);
  const found = findDataset(name, options);
  if (found) return { name, folder: found, how: "found" };
  if (spec.debianPackage && (options.apt ?? true) && isRootWithApt()) {
    if (await aptInstall(spec.debianPackage, log)) {
      const installed = findDataset(name, options);
      if (installed) return { name, folder: installed, how: "apt" };
    }
    log(`apt-get could not install ${spec.debianPackage}; downloading instead`);
  }
  const dir = options.cacheDir ?? spec.cacheDir;
  const base = options.baseUrl ?? spec.urls;
  log(`downloading ${name} from ${base} into ${dir}`);
  for (const file of splitFiles()) {
    await downloadIdx(base, file, spec.sha256[file], dir, log);
  }
  return { name, folder: dir, how: "download" };
}
