/**
 * LeNet-5 as the confidence study builds it, as a spec: what a population member's saved
 * weights load into (`native/src/population/lenet.rs` trains the same network by hand; the
 * tests check that the two agree). The taps are the study's data flow.
 * @module
 */
import type { NetSpec } from "../../ffi/spec.ts";

/** The data-flow taps, in the order the meta-networks read them, with their widths. */
export const DATA_FLOW = [
  { tap: "pool2", width: 256 },
  { tap: "fc1", width: 120 },
  { tap: "fc2", width: 84 },
  { tap: "logits", width: 10 },
] as const;

/** conv 1->6 k5, ReLU, pool, conv 6->16 k5, ReLU, pool, fc 256->120->84->10; no normalisation. */
export const LENET5: NetSpec = {
  name: "lenet5",
  layers: [
    { kind: "conv2d", name: "conv1", out: 6, kernel: 5 },
    { kind: "relu" },
    { kind: "max_pool", size: 2 },
    { kind: "conv2d", name: "conv2", out: 16, kernel: 5 },
    { kind: "relu" },
    { kind: "max_pool", size: 2, tap: "pool2" },
    { kind: "flatten" },
    { kind: "linear", name: "fc1", out: 120, tap: "fc1" },
    { kind: "relu" },
    { kind: "linear", name: "fc2", out: 84, tap: "fc2" },
    { kind: "relu" },
    { kind: "linear", name: "fc3", out: 10, tap: "logits" },
  ],
};
