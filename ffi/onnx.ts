/**
 * ONNX import's native half (`native/src/onnx/`): an ONNX image classifier read and converted
 * to a wna spec, with its weights written under wna's names, so that every analysis runs it on
 * wna's own kernels and gradients.
 * @module
 */
import { optionsJson, readText } from "./native.ts";
import type { NetSpec } from "./spec.ts";

/** What {@linkcode convertOnnx} made of an ONNX file. */
export interface OnnxConversion {
  /** The network as a wna spec; its layers are named after the graph's modules. */
  spec: NetSpec;
  /**
   * The graph's own input normalisation, `(x - shift) / scale` from Sub/Div nodes on its input
   * (0 and 1 when it has none), applied after the user's.
   */
  shift: number;
  scale: number;
  /** What the conversion left out, in words (a final softmax, …). */
  notes: string[];
  /** The exporter named in the file (`pytorch`, `tf2onnx`, …). */
  producer: string;
  /** The file's ONNX opset. */
  opset: number;
}

/**
 * Reads the ONNX model at `path`, converts it to a wna spec named `name`, and writes its weights
 * as safetensors at `weights` (complete or not at all). Unsupported ops, shapes and corrupt
 * files throw, naming the node or what is wrong.
 */
export function convertOnnx(path: string, weights: string, name: string): OnnxConversion {
  const request = optionsJson("onnx", { path, weights, name });
  return JSON.parse(readText("wna_onnx_import", request, BigInt(request.length))) as OnnxConversion;
}
