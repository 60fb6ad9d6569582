/**
 * The bench's training rows: one epoch of `smaller`, of zoo nets 2 and 11.1 with the zoo's
 * schedule, and of the recurrent `rnn` and `lstm` (with their white-noise rows).
 * @module
 */
import { Model } from "../../ffi/model.ts";
import { ZOO_NETS, ZOO_SCHEDULE } from "../zoo/nets.ts";
import { type Bench, noiseRow, trainRow } from "./context.ts";

/** One training epoch of `smaller` and of zoo nets 2 and 11.1. */
export async function trainingRows(b: Bench): Promise<void> {
  // 1. One training epoch of smaller (Adam, batch 128), the whole training set.
  {
    using m = Model.create("smaller", { seed: 0, mean: b.mean, std: b.std });
    await trainRow(b, "smaller", m, { batchSize: 128 }, {});
  }
  // 1b. One training epoch of zoo nets 2 (MLP, batch norm) and 11.1 (CNN, BN2d, avg pool), with
  // the zoo's schedule: batch 64, constant learning rate, no weight decay.
  for (const id of ["2", "11.1"]) {
    const net = ZOO_NETS.find((n) => n.id === id)!;
    using m = Model.create(net.spec, { seed: 0, mean: b.mean, std: b.std });
    const options = {
      batchSize: ZOO_SCHEDULE.batchSize,
      lrMax: net.lr,
      lrMin: net.lr,
      weightDecay: 0,
      optimizer: net.optimizer,
    };
    await trainRow(b, `zoo ${id}`, m, options, {
      spec: net.spec,
      optimizer: net.optimizer,
      lr: net.lr,
      weightDecay: 0,
    });
  }
}

/** The recurrent built-ins: a training epoch on the first images, and white noise. */
export async function recurrentRows(b: Bench): Promise<void> {
  // 3a. The recurrent built-ins (28 rows through two layers of 128): a training epoch on the
  // first images, and white noise. PyTorch runs nn.RNN and nn.LSTM, its fused CPU kernels.
  for (const name of ["rnn", "lstm"] as const) {
    using m = Model.create(name, { seed: 0, mean: b.mean, std: b.std });
    const spec = m.info().spec;
    const limit = b.sizes.recurrentTrain;
    await trainRow(b, name, m, { batchSize: 128 }, { spec, limit }, limit);
    await noiseRow(b, name, m, b.sizes.noise.recurrent, { spec });
  }
}
