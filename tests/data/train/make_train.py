"""Training fixtures from real PyTorch (run with /opt/torchvenv/bin/python from this folder).

Writes:
- trajectories.json: models x losses x optimizers x batch orders, each trained in float32 and
  again in float64 from the same initial state (the float64 run measures PyTorch's own rounding
  drift, the yardstick of the tolerances): per-step losses (`loss.item()`) and final state_dicts.
- loader.json: torch.randperm for several n and seeds, and DataLoader(TensorDataset, shuffle=True,
  generator=manual_seed(S), drop_last) index orders over several epochs.
- activations.json: autograd derivatives of every activation at random points and at the kinks.
"""

import json

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.set_num_threads(1)


def tolist(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def state(model):
    out = []
    for k, v in model.state_dict().items():
        if v.dtype == torch.int64:
            out.append({"name": k, "shape": [], "count": int(v.item())})
        else:
            out.append({"name": k, "shape": list(v.shape), "values": tolist(v)})
    return out


class MyModel(nn.Module):
    """The primer's model: Linear -> torch.sigmoid -> Linear."""

    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.linear1 = nn.Linear(n_in, hidden)
        self.linear2 = nn.Linear(hidden, n_out)
        nn.init.xavier_normal_(self.linear1.weight)
        nn.init.kaiming_normal_(self.linear2.weight)

    def forward(self, x):
        return self.linear2(torch.sigmoid(self.linear1(x)))


def make_loss(spec):
    name, red = spec["name"], spec["reduction"]
    if name == "mse":
        return nn.MSELoss(reduction=red)
    if name == "l1":
        return nn.L1Loss(reduction=red)
    if name == "smooth_l1":
        return nn.SmoothL1Loss(reduction=red, beta=spec["beta"])
    if name == "huber":
        return nn.HuberLoss(reduction=red, delta=spec["delta"])
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=red, label_smoothing=spec.get("label_smoothing", 0.0))
    if name == "nll":
        return nn.NLLLoss(reduction=red)
    if name == "bce":
        return nn.BCELoss(reduction=red)
    if name == "bce_with_logits":
        return nn.BCEWithLogitsLoss(reduction=red)
    raise ValueError(name)


def make_optim(spec, params):
    o = dict(spec)
    name = o.pop("name")
    if name == "sgd":
        return torch.optim.SGD(params, **o)
    if name == "adam":
        o["betas"] = tuple(o["betas"])
        return torch.optim.Adam(params, **o)
    if name == "adamw":
        o["betas"] = tuple(o["betas"])
        return torch.optim.AdamW(params, **o)
    raise ValueError(name)


def train(model, x, y, case, dtype):
    model = model.to(dtype)
    x = x.to(dtype)
    if y.dtype != torch.int64:
        y = y.to(dtype)
    model.train()
    loss_fn = make_loss(case["loss"])
    opt = make_optim(case["optim"], model.parameters())
    g = None
    if case["shuffle_seed"] is not None:
        g = torch.Generator().manual_seed(case["shuffle_seed"])
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=case["batch_size"],
        shuffle=case["shuffle_seed"] is not None,
        generator=g,
        drop_last=case["drop_last"],
    )
    losses = []
    for _ in range(case["epochs"]):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
    return losses, state(model)


def seq(*mods):
    return nn.Sequential(*mods)


def case(name, arch, build, n, n_in, target, loss, optim, batch_size, epochs=2,
         shuffle_seed=None, drop_last=False, seed=0, zero=False):
    torch.manual_seed(seed)
    model = build()
    if zero:
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
    x = torch.randn(n, n_in) * 1.5
    n_out = [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
    if target == "class":
        y = torch.randint(0, n_out, (n,))
    elif target == "prob":
        y = torch.rand(n, n_out)
    else:
        y = torch.randn(n, n_out)
    init = state(model)
    c = {
        "name": name,
        "arch": arch,
        "loss": loss,
        "optim": optim,
        "batch_size": batch_size,
        "epochs": epochs,
        "shuffle_seed": shuffle_seed,
        "drop_last": drop_last,
        "n": n,
        "in": n_in,
        "out": n_out,
    }
    import copy

    m32, m64 = copy.deepcopy(model), copy.deepcopy(model)
    losses32, final32 = train(m32, x, y, c, torch.float32)
    losses64, final64 = train(m64, x, y, c, torch.float64)
    c.update(
        {
            "x": tolist(x),
            "y": [int(v) for v in y.tolist()] if target == "class" else tolist(y),
            "init": init,
            "losses": losses32,
            "losses64": losses64,
            "final": final32,
            "final64": final64,
        }
    )
    return c


def trajectories():
    cases = []
    cases.append(case(
        "primer_mse_sgd", "linear,F.sigmoid,linear", lambda: MyModel(4, 7, 3), 20, 4, "real",
        {"name": "mse", "reduction": "mean"}, {"name": "sgd", "lr": 0.1}, 4, epochs=3))
    cases.append(case(
        "bn_relu_ce_adam_shuffle_droplast", "linear,batchnorm1d,relu,linear",
        lambda: seq(nn.Linear(5, 7, bias=False), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3)),
        33, 5, "class",
        {"name": "cross_entropy", "reduction": "mean", "label_smoothing": 0.1},
        {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8}, 6, epochs=3,
        shuffle_seed=3, drop_last=True, seed=1))
    cases.append(case(
        "ln_gelu_bcelogits_sum_adamw_amsgrad", "linear,layernorm,gelu,linear",
        lambda: seq(nn.Linear(6, 9), nn.LayerNorm(9), nn.GELU(), nn.Linear(9, 2)),
        31, 6, "prob", {"name": "bce_with_logits", "reduction": "sum"},
        {"name": "adamw", "lr": 0.005, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.05,
         "amsgrad": True}, 7, epochs=2, shuffle_seed=5, seed=2))
    cases.append(case(
        "prelu_tanh_bce_sgd_nesterov", "linear,prelu,tanh,linear,sigmoid",
        lambda: seq(nn.Linear(4, 8), nn.PReLU(8, init=0.2), nn.Tanh(), nn.Linear(8, 1),
                    nn.Sigmoid()),
        23, 4, "prob", {"name": "bce", "reduction": "mean"},
        {"name": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}, 5,
        epochs=3, seed=3))
    cases.append(case(
        "zero_init_mse_sum_sgd_momentum", "linear,sigmoid,linear",
        lambda: seq(nn.Linear(3, 6), nn.Sigmoid(), nn.Linear(6, 2)), 17, 3, "real",
        {"name": "mse", "reduction": "sum"},
        {"name": "sgd", "lr": 0.01, "momentum": 0.5, "dampening": 0.1}, 4, epochs=2, seed=4,
        zero=True))
    cases.append(case(
        "elu_logsoftmax_nll_adam_batch1", "linear,elu,linear,log_softmax",
        lambda: seq(nn.Linear(5, 6), nn.ELU(), nn.Linear(6, 4), nn.LogSoftmax(dim=1)), 9, 5,
        "class", {"name": "nll", "reduction": "mean"},
        {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
        1, epochs=2, seed=5))
    cases.append(case(
        "silu_l1_sgd_wd", "linear,silu,linear",
        lambda: seq(nn.Linear(3, 5), nn.SiLU(), nn.Linear(5, 2)), 19, 3, "real",
        {"name": "l1", "reduction": "mean"},
        {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, 8, epochs=3,
        shuffle_seed=7, seed=6))
    cases.append(case(
        "softplus_smoothl1_adam", "linear,softplus,linear",
        lambda: seq(nn.Linear(7, 4), nn.Softplus(), nn.Linear(4, 3)), 15, 7, "real",
        {"name": "smooth_l1", "reduction": "mean", "beta": 0.5},
        {"name": "adam", "lr": 0.02, "betas": [0.9, 0.999], "eps": 1e-8}, 4, epochs=2, seed=7))
    cases.append(case(
        "leaky_huber_sum_adamw", "linear,leaky_relu,linear",
        lambda: seq(nn.Linear(4, 5), nn.LeakyReLU(), nn.Linear(5, 2)), 13, 4, "real",
        {"name": "huber", "reduction": "sum", "delta": 2.0},
        {"name": "adamw", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
        3, epochs=2, shuffle_seed=11, drop_last=True, seed=8))
    cases.append(case(
        "softmax_ce_sum_sgd", "linear,tanh,linear",
        lambda: seq(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 5)), 12, 3, "class",
        {"name": "cross_entropy", "reduction": "sum", "label_smoothing": 0.0},
        {"name": "sgd", "lr": 0.05}, 5, epochs=2, seed=9))
    return cases


def loader_orders():
    perms = []
    for n, seed in [(1, 0), (2, 0), (5, 1), (33, 3), (100, 42), (1000, 7)]:
        g = torch.Generator().manual_seed(seed)
        perms.append({"n": n, "seed": seed,
                      "perms": [torch.randperm(n, generator=g).tolist() for _ in range(2)]})
    # Large n: the first and last 16 values and a checksum (sum of i * perm[i] mod 2^61 - 1).
    big = []
    for n, seed in [(100_000, 5), (1 << 20, 9)]:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        check = sum(i * v for i, v in enumerate(perm)) % (2**61 - 1)
        big.append({"n": n, "seed": seed, "head": perm[:16], "tail": perm[-16:], "check": check})
    orders = []
    for n, bs, seed, drop in [(33, 6, 3, True), (31, 7, 5, False), (10, 3, 0, False),
                              (257, 32, 123, True)]:
        loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=bs, shuffle=True,
                            generator=torch.Generator().manual_seed(seed), drop_last=drop)
        epochs = [[b[0].tolist() for b in loader] for _ in range(3)]
        orders.append({"n": n, "batch_size": bs, "seed": seed, "drop_last": drop,
                       "epochs": epochs})
    return {"randperm": perms, "randperm_big": big, "loader": orders}


def optimizer_steps():
    """Optimizer updates alone on given gradients: p0, six gradients, p after each step."""
    torch.manual_seed(0)
    n = 37
    p0 = torch.randn(n)
    grads = [torch.randn(n) for _ in range(6)]
    configs = [
        {"name": "sgd", "lr": 0.1},
        {"name": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
        {"name": "sgd", "lr": 0.01, "momentum": 0.5, "dampening": 0.1},
        {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8},
        {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
        {"name": "adamw", "lr": 0.005, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.05,
         "amsgrad": True},
        {"name": "adam", "lr": 0.001, "betas": [0.3, 0.5], "eps": 1e-8, "amsgrad": True},
    ]
    out = []
    for cfg in configs:
        p = p0.clone().requires_grad_(True)
        opt = make_optim(cfg, [p])
        after = []
        for g in grads:
            p.grad = g.clone()
            opt.step()
            after.append(tolist(p))
        out.append({"optim": cfg, "p0": tolist(p0), "grads": [tolist(g) for g in grads],
                    "after": after})
    return out


ACTS = {
    "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(), "leaky_relu:0.2": nn.LeakyReLU(0.2),
    "elu": nn.ELU(), "elu:0.5": nn.ELU(0.5), "selu": nn.SELU(), "celu:1.5": nn.CELU(1.5),
    "gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "silu": nn.SiLU(),
    "mish": nn.Mish(), "softplus": nn.Softplus(), "softplus:2:1": nn.Softplus(2.0, 1.0),
    "hardtanh": nn.Hardtanh(), "hardtanh:-2:0.5": nn.Hardtanh(-2.0, 0.5), "relu6": nn.ReLU6(),
    "hardsigmoid": nn.Hardsigmoid(), "hardswish": nn.Hardswish(), "sigmoid": nn.Sigmoid(),
    "tanh": nn.Tanh(),
}


def activations():
    torch.manual_seed(0)
    kinks = [0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 0.5, -2.0, 20.0, 10.0, -20.0, 1e-30, -1e-30]
    x = torch.cat([torch.tensor(kinks), torch.randn(40) * 4])
    out = []
    for name, m in ACTS.items():
        xi = x.clone().requires_grad_(True)
        m(xi).backward(torch.ones_like(xi))
        out.append({"name": name, "x": tolist(x), "grad": tolist(xi.grad)})
    # Row activations: vector-Jacobian products with a random upstream gradient.
    rows = torch.randn(3, 7) * 3
    up = torch.randn(3, 7)
    for name, f in [("softmax", lambda t: F.softmax(t, dim=1)),
                    ("log_softmax", lambda t: F.log_softmax(t, dim=1))]:
        xi = rows.clone().requires_grad_(True)
        f(xi).backward(up)
        out.append({"name": name, "x": tolist(rows), "up": tolist(up), "grad": tolist(xi.grad),
                    "cols": 7})
    return out


if __name__ == "__main__":
    with open("trajectories.json", "w") as f:
        json.dump({"torch": torch.__version__, "cases": trajectories()}, f)
    with open("loader.json", "w") as f:
        json.dump({"torch": torch.__version__, **loader_orders()}, f)
    with open("optim.json", "w") as f:
        json.dump({"torch": torch.__version__, "cases": optimizer_steps()}, f)
    with open("activations.json", "w") as f:
        json.dump({"torch": torch.__version__, "cases": activations()}, f)
