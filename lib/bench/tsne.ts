/**
 * The bench's t-SNE row: wna against scikit-learn, with both maps' trustworthiness.
 * @module
 */
import { trustworthiness, tsne } from "../../ffi/tsne.ts";
import { writeFileAtomic } from "../files.ts";
import { encodeNpy, readNpy } from "../npy.ts";
import { type Bench, report } from "./context.ts";

/** t-SNE of test images, timed against the peer's PCA-50 + TSNE. */
export async function tsneRow(b: Bench): Promise<void> {
  // 5. t-SNE of test images: wna against scikit-learn (the peer's PCA-50 + TSNE, both timed).
  {
    const points = b.quick ? 2000 : 10000;
    const images = b.test.images.subarray(0, points * 784);
    await writeFileAtomic(`${b.cache}/test-images.npy`, encodeNpy(images, [points, 784]));
    const r = await tsne(images, 784, {});
    const embedding = `${b.cache}/peer-tsne.npy`;
    await report(b, "tsne", "mnist", points / r.seconds, {
      task: "tsne",
      images: `${b.cache}/test-images.npy`,
      points,
      embedding,
    });
    const row = b.rows[b.rows.length - 1];
    row.trustworthiness = { wna: r.trustworthiness };
    if (b.withPeer) {
      const peerMap = await readNpy(embedding);
      row.trustworthiness.peer = await trustworthiness(images, 784, peerMap.data, 2, 5);
    }
    console.log(
      `tsne ${points} points: wna ${r.seconds.toFixed(1)} s, trustworthiness wna ${
        r.trustworthiness.toFixed(3)
      }${
        row.trustworthiness.peer === undefined
          ? ""
          : `, scikit-learn ${row.trustworthiness.peer.toFixed(3)}`
      }`,
    );
  }
}
