// A user's own script: train a small model on 2,000 MNIST images and look at its bias.
import { loadDataset, Model } from "../mod.ts";

const train = await loadDataset("mnist", "train", { limit: 2000 });
const test = await loadDataset("mnist", "test", { limit: 1000 });
using model = Model.create("smaller", { seed: 1, mean: train.mean, std: train.std });
for (let epoch = 0; epoch < 2; epoch++) {
  await model.trainEpoch(train.images, train.labels, { epoch, totalSteps: 32, seed: 1 });
}
const { accuracy } = await model.evaluate(test.images, test.labels);
// Noise with the training images' mean and covariance reaches every class.
await model.fitDataNoise(train.images);
const maps = await model.analyse(null, { noise: "data", samples: 2000, seed: 1 });
console.log(JSON.stringify({ accuracy, counts: Array.from(maps.counts.data) }));
