"""The PyTorch peer of `deno task bench`: the same networks and the same work, on the same CPU.

Reads a JSON job from argv[1] and prints one JSON object of measurements. Not part of the
product; `scripts/bench.ts` installs PyTorch into bench/.venv and runs this beside wna.
"""

import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Smaller(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 32, 3), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64)
        self.fc1, self.bn3 = nn.Linear(64 * 5 * 5, 256), nn.BatchNorm1d(256)
        self.fc2 = nn.Linear(256, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2).flatten(1)
        return self.fc2(F.relu(self.bn3(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if cin != cout or stride != 1:
            self.proj = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(h + (self.proj(x) if self.proj is not None else x))


class Larger(nn.Module):
    def __init__(self, classes=10, blocks=(2, 1, 3, 2)):
        super().__init__()
        self.stem, self.stem_bn = nn.Conv2d(1, 16, 7, 2, 3), nn.BatchNorm2d(16)
        layers, cin = [], 16
        for width, stride, count in zip((16, 32, 64, 128), (1, 1, 2, 1), blocks):
            for b in range(count):
                layers.append(Block(cin, width, stride if b == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(128, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem_bn(self.stem(x))))
        return self.fc(x.mean((2, 3)))


def device(job):
    return torch.device(job.get("device", "cpu"))


def sync(job):
    if job.get("device", "cpu") == "cuda":
        torch.cuda.synchronize()


class Rows(nn.Module):
    """wna's `rnn` layer: an image read row by row (each step one row of every channel), or a
    [steps, features] sequence as it is; gives the top layer's state after the last step."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        if x.dim() == 4:
            b, c, h, w = x.shape
            x = x.permute(0, 2, 1, 3).reshape(b, h, c * w)
        return self.rnn(x)[0][:, -1]


def from_spec(spec):
    """A wna network spec (ffi/spec.ts) as an nn.Sequential: the same layers, PyTorch's own."""
    layers, shape = [], list(spec.get("input", [1, 28, 28]))
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "mish": nn.Mish}
    for l in spec["layers"]:
        kind = l["kind"]
        if kind == "conv2d":
            k, s, p = l["kernel"], l.get("stride", 1), l.get("padding", 0)
            layers.append(nn.Conv2d(shape[0], l["out"], k, s, p, bias=l.get("bias", True)))
            shape = [l["out"]] + [(d + 2 * p - k) // s + 1 for d in shape[1:]]
        elif kind == "batch_norm":
            layers.append((nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0]))
        elif kind in ("max_pool", "avg_pool"):
            size = l["size"]
            layers.append(nn.MaxPool2d(size) if kind == "max_pool" else nn.AvgPool2d(size))
            shape = [shape[0]] + [d // size for d in shape[1:]]
        elif kind == "flatten":
            layers.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif kind == "linear":
            layers.append(nn.Linear(shape[0], l["out"], bias=l.get("bias", True)))
            shape = [l["out"]]
        elif kind == "dropout":
            layers.append(nn.Dropout(l.get("p", 0.5)))
        elif kind == "reshape":
            layers.append(nn.Unflatten(1, tuple(l["shape"])))
            shape = list(l["shape"])
        elif kind == "upsample":
            layers.append(nn.Upsample(scale_factor=l["scale"], mode="nearest"))
            shape = [shape[0]] + [d * l["scale"] for d in shape[1:]]
        elif kind == "rnn":
            cell = nn.LSTM if l.get("cell", "tanh") == "lstm" else nn.RNN
            features = shape[0] * shape[2] if len(shape) == 3 else shape[1]
            layers.append(Rows(cell(features, l["hidden"], l.get("layers", 1),
                                    bias=l.get("bias", True), batch_first=True)))
            shape = [l["hidden"]]
        elif kind == "leaky_relu":
            layers.append(nn.LeakyReLU(l.get("slope", 0.01)))
        elif kind in acts:
            layers.append(acts[kind]())
        else:
            raise ValueError(f"peer: layer kind {kind} is not in the bench's spec builder")
    return nn.Sequential(*layers)


def build(job, train=False):
    """The job's network on its device; `torch.compile`d when the job asks (GPU runs)."""
    if "spec" in job:
        model = from_spec(job["spec"]).to(device(job))
    else:
        model = {"smaller": Smaller, "larger": Larger}[job["model"]]().to(device(job))
    model.train(train)
    return torch.compile(model) if job.get("compile") else model


def train_epoch(job):
    torch.manual_seed(0)
    dev = device(job)
    images = np.load(job["images"]).astype(np.float32).reshape(-1, 1, 28, 28)
    if images.max() > 1:
        images /= 255.0
    labels = torch.from_numpy(np.load(job["labels"]).astype(np.int64)).to(dev)
    if "limit" in job:  # the first n images, as wna's row trains on
        images, labels = images[: job["limit"]], labels[: job["limit"]]
    x_all = ((torch.from_numpy(images) - job["mean"]) / job["std"]).to(dev)
    model = build(job, train=True)
    lr, wd = job.get("lr", 2e-3), job.get("weightDecay", 1e-4)
    opt = {
        "adam": lambda: torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd),
        "sgd": lambda: torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd),
        "adadelta": lambda: torch.optim.Adadelta(model.parameters(), lr=lr, weight_decay=wd),
    }[job.get("optimizer", "adam")]()
    order = torch.randperm(len(labels))
    batch = job["batchSize"]

    def step(idx):
        loss = F.cross_entropy(model(x_all[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # Two warm-up steps, so torch.compile's tracing and cuDNN's autotuning are not timed.
    for _ in range(2):
        step(order[:batch])
    sync(job)
    start, done = time.perf_counter(), 0
    for s in range(0, len(order) - 1, batch):
        idx = order[s : s + batch]
        if len(idx) < batch:
            break  # a short last batch would make torch.compile trace again
        step(idx)
        done += len(idx)
    sync(job)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "imagesPerSecond": done / seconds}


class LeNet5(nn.Module):
    """The confidence study's LeNet-5 (wna's lib/confidence/lenet.ts)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(256, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


def lenet_epochs(job):
    """The study's own loop, one model at a time: torch.manual_seed, a shuffling DataLoader over
    the training tensors (pixels in [0, 1], no normalisation), SGD or Adam with L2 weight decay,
    for each run in `runs`; returns the seconds of each."""
    from torch.utils.data import DataLoader, TensorDataset

    images = np.load(job["images"]).astype(np.float32).reshape(-1, 1, 28, 28)
    if images.max() > 1:
        images /= 255.0
    data = TensorDataset(
        torch.from_numpy(images), torch.from_numpy(np.load(job["labels"]).astype(np.int64))
    )
    seconds = []
    for run in job["runs"]:
        torch.manual_seed(run["seed"])
        model = LeNet5()
        make = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[run["optimizer"]]
        opt = make(model.parameters(), lr=run["lr"], weight_decay=run["weightDecay"])
        loader = DataLoader(data, batch_size=run["batchSize"], shuffle=True)
        start = time.perf_counter()
        for _ in range(run["epochs"]):
            for x, y in loader:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        seconds.append(time.perf_counter() - start)
    total = sum(seconds)
    images_trained = sum(r["epochs"] for r in job["runs"]) * len(data)
    return {"seconds": seconds, "imagesPerSecond": images_trained / total}


def inference(job):
    model = build(job)
    x = torch.rand(job["batchSize"], 1, 28, 28, device=device(job))
    with torch.inference_mode():
        model(x)
        sync(job)
        start, done = time.perf_counter(), 0
        while done < job["images"]:
            model((x - job["mean"]) / job["std"])
            done += job["batchSize"]
        sync(job)
    return {"imagesPerSecond": done / (time.perf_counter() - start)}


def noise(job):
    """Uniform noise -> softmax -> per-class count, mean, confidence-weighted and thresholded sums."""
    model, dev = build(job), device(job)
    classes, batch = 10, job["batchSize"]
    gen = torch.Generator(device=dev).manual_seed(0)
    sums = torch.zeros(classes, 784, dtype=torch.float64, device=dev)
    weighted = torch.zeros(classes, 784, dtype=torch.float64, device=dev)
    thresholded = torch.zeros(classes, 784, dtype=torch.float64, device=dev)
    counts = torch.zeros(classes, dtype=torch.int64, device=dev)
    with torch.inference_mode():
        model(torch.rand(batch, 1, 28, 28, device=dev))
        sync(job)
        start, done = time.perf_counter(), 0
        while done < job["samples"]:
            stimuli = torch.rand(batch, 784, generator=gen, device=dev)
            prob = F.softmax(model(((stimuli - job["mean"]) / job["std"]).view(-1, 1, 28, 28)), 1)
            conf, pred = prob.max(1)
            onehot = F.one_hot(pred, classes).to(stimuli.dtype)
            sums += (onehot.T @ stimuli).double()
            weighted += ((onehot * conf[:, None]).T @ stimuli).double()
            thresholded += ((onehot * (conf > 0.9)[:, None]).T @ stimuli).double()
            counts += onehot.sum(0).long()
            done += batch
        sync(job)
    return {"imagesPerSecond": done / (time.perf_counter() - start)}


def fgsm(job):
    model, dev = build(job), device(job)
    images = torch.rand(job["batchSize"], 1, 28, 28, device=dev)
    labels = torch.randint(0, 10, (job["batchSize"],), device=dev)

    def attack():
        x = images.clone().requires_grad_(True)
        loss = F.cross_entropy(model((x - job["mean"]) / job["std"]), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
        return (images + job["eps"] * grad.sign()).clamp_(0, 1)

    attack()  # warm-up: cuDNN autotuning and torch.compile tracing are not timed
    sync(job)
    start, done = time.perf_counter(), 0
    while done < job["images"]:
        attack()
        done += job["batchSize"]
    sync(job)
    return {"imagesPerSecond": done / (time.perf_counter() - start)}


def gan(job):
    """One epoch of wna's GAN step (native/src/gan.rs) in PyTorch: D on a real batch and a
    detached fake batch, then G through the updated D with the non-saturating loss; BCE with
    logits, Adam(2e-4, betas (0.5, 0.999)) for both, batch 128, pixels mapped to [-1, 1]."""
    torch.manual_seed(0)
    dev = device(job)
    images = np.load(job["images"]).astype(np.float32).reshape(-1, 1, 28, 28)
    if images.max() > 1:
        images /= 255.0
    x_all = (torch.from_numpy(images) * 2 - 1).to(dev)
    g = from_spec(job["generator"]).to(dev).train()
    d = from_spec(job["discriminator"]).to(dev).train()
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    batch, latent = job["batchSize"], job["generator"]["input"][0]
    order = torch.randperm(len(x_all))

    def step(idx):
        real = x_all[idx]
        ones = torch.ones(len(idx), 1, device=dev)
        fake = g(torch.randn(len(idx), latent, device=dev)).view(-1, 1, 28, 28)
        d_loss = bce(d(real), ones) + bce(d(fake.detach()), torch.zeros_like(ones))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = bce(d(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    step(order[:batch])
    sync(job)
    start, done = time.perf_counter(), 0
    for s in range(0, len(order) - 1, batch):
        idx = order[s : s + batch]
        if len(idx) < 2:
            break
        step(idx)
        done += len(idx)
    sync(job)
    return {"imagesPerSecond": done / (time.perf_counter() - start)}


def integrated_gradients(job):
    """Captum's IntegratedGradients on the job's net in pixel space (normalisation inside the
    wrapped forward), black baseline, Gauss-Legendre steps, the label logit as target: what
    wna's `attribute` computes with the same steps and internal batch."""
    from captum.attr import IntegratedGradients

    model, dev = build(job), device(job)
    wrapped = lambda x: model((x - job["mean"]) / job["std"])
    images = np.load(job["images"]).astype(np.float32)[: job["count"]].reshape(-1, 1, 28, 28)
    if images.max() > 1:
        images /= 255.0
    x = torch.from_numpy(images).to(dev)
    target = torch.from_numpy(np.load(job["labels"]).astype(np.int64)[: job["count"]]).to(dev)
    ig = IntegratedGradients(wrapped)
    kwargs = dict(
        target=target,
        baselines=torch.zeros_like(x),
        n_steps=job["steps"],
        method="gausslegendre",
        internal_batch_size=job["internalBatch"],
    )
    ig.attribute(x[:2], **{**kwargs, "target": target[:2], "baselines": torch.zeros_like(x[:2])})
    sync(job)
    start = time.perf_counter()
    ig.attribute(x, **kwargs)
    sync(job)
    return {"imagesPerSecond": len(x) / (time.perf_counter() - start)}


def tsne(job):
    """scikit-learn's t-SNE recipe for images: PCA to 50 dimensions, then TSNE with its defaults
    (Barnes-Hut, perplexity 30, learning rate auto, PCA init, 1,000 iterations). Both timed, as
    wna times both; the embedding is saved so that wna scores both maps with one measure."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.load(job["images"])[: job["points"]]
    start = time.perf_counter()
    reduced = PCA(50, random_state=0).fit_transform(x)
    y = TSNE(random_state=0).fit_transform(reduced)
    seconds = time.perf_counter() - start
    np.save(job["embedding"], y.astype(np.float32))
    return {"imagesPerSecond": len(x) / seconds}


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    torch.set_num_threads(os.cpu_count() or 1)
    torch.backends.cudnn.benchmark = job.get("device") == "cuda"
    tasks = {"train": train_epoch, "inference": inference, "noise": noise, "fgsm": fgsm}
    others = {"tsne": tsne, "gan": gan, "integrated_gradients": integrated_gradients}
    others["lenet_epochs"] = lenet_epochs
    result = {**tasks, **others}[job["task"]](job)
    result["torch"] = torch.__version__
    result["threads"] = torch.get_num_threads()
    if job.get("device") == "cuda":
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(result))
