"""The one training loop :func:`sciml_inverse.fit`: exact resume, time limit, epochs, mixed
precision, DDP (2 gloo CPU processes)."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from torch import nn

import sciml_inverse
from sciml_inverse import FitOptions, TrainTask, fit, full_precision, resolve_precision
from sciml_inverse import _precision as precision_mod


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.2),
                         nn.Conv2d(4, 1, 3, padding=1))


class _Task(TrainTask):
    """Denoising with every RNG in play: data from a passed torch generator, noise from numpy's
    global RNG and a passed numpy generator, Python's random, dropout (torch's global RNG)."""

    def __init__(self, gen: torch.Generator, npgen: np.random.Generator) -> None:
        self.gen, self.npgen = gen, npgen
        self.calls = 0

    def loss(self, model, batch):
        x = torch.rand(4, 1, 8, 8, generator=self.gen)
        noise = torch.from_numpy(
            np.random.standard_normal(x.shape).astype(np.float32))  # noqa: NPY002
        scale = float(self.npgen.uniform(0.05, 0.15)) * (1 + 0.01 * random.random())
        self.calls += 1
        out = model(x + scale * noise)
        loss = ((out - x) ** 2).mean()
        return loss, {"mse": loss.detach()}

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = int(state["calls"])


def _run(tmp_path, opts: FitOptions, name: str = "ck.pt"):
    model = _model()
    gen, npgen = torch.Generator().manual_seed(1), np.random.default_rng(2)
    task = _Task(gen, npgen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    opts = dataclasses.replace(opts, checkpoint=tmp_path / name if opts.checkpoint else None)
    res = fit(task, model, opt, None, opts, scheduler=sched, generators=[gen, npgen],
              config={"model": "toy", "lr": 1e-2})
    return model, task, res


def test_step_resume_is_bitwise_exact(tmp_path):
    base = FitOptions(steps=10, seed=5, progress=False, log_every=2)
    ref, ref_task, ref_res = _run(tmp_path, base)
    opts = dataclasses.replace(base, checkpoint="yes")
    _, _, first = _run(tmp_path, dataclasses.replace(opts, stop_after=4))
    assert first.step == 4 and first.stopped == "stop_after"
    # other global RNG states in the new process must not matter: the saved ones are restored
    torch.manual_seed(123)
    np.random.seed(7)  # noqa: NPY002
    random.seed(9)
    model, task, res = _run(tmp_path, opts)
    assert res.step == 10 and res.stopped == "done" and res.resumed_from == 4
    assert task.calls == ref_task.calls == 10
    for p, q in zip(ref.state_dict().values(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=0)
    assert res.history == ref_res.history
    assert len(res.history["step"]) == 5 and set(res.history) == {"step", "loss", "mse"}
    # and the run did learn something (not a frozen model)
    assert res.history["loss"][-1] < res.history["loss"][0]


def test_iterable_data_resumes_where_it_was(tmp_path):
    batches = [torch.full((2, 3), float(i)) for i in range(3)]  # restarted when exhausted
    seen: list[float] = []

    def step(model, batch):
        seen.append(float(batch[0, 0]))
        return (model(batch) ** 2).mean()

    def run(**kw):
        torch.manual_seed(0)
        m = nn.Linear(3, 1)
        return m, fit(step, m, torch.optim.SGD(m.parameters(), lr=0.01), batches,
                      FitOptions(steps=7, progress=False, checkpoint=tmp_path / "it.pt", **kw))

    run(stop_after=4)
    m, _ = run()
    assert seen == [0, 1, 2, 0, 1, 2, 0]
    torch.manual_seed(0)
    ref = nn.Linear(3, 1)
    fit(step, ref, torch.optim.SGD(ref.parameters(), lr=0.01), batches,
        FitOptions(steps=7, progress=False))
    torch.testing.assert_close(m.weight, ref.weight, rtol=0, atol=0)


def test_epochs_resume_and_epoch_hook(tmp_path):
    x = torch.randn(24, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])

    class Task(TrainTask):
        def loss(self, model, batch):
            xb, yb = batch
            return ((model(xb) - yb) ** 2).mean()

        def on_epoch_end(self, epoch):
            with torch.no_grad():
                return {"val": float(((self.model(x) - y) ** 2).mean())}

    def loader(epoch):
        perm = torch.randperm(24)  # the global torch RNG, checkpointed
        return [(x[perm[i:i + 8]], y[perm[i:i + 8]]) for i in range(0, 24, 8)]

    def run(**kw):
        torch.manual_seed(0)
        m = nn.Linear(3, 1)
        t = Task()
        t.model = m
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
        return m, fit(t, m, opt, loader, FitOptions(epochs=5, progress=False, seed=1, **kw),
                      scheduler=sched)

    ref, r = run()
    assert r.epoch == 5 and r.step == 15
    assert [e["epoch"] for e in r.history["epoch_end"]] == [1, 2, 3, 4, 5]
    assert r.history["epoch_end"][-1]["val"] < r.history["epoch_end"][0]["val"]
    run(checkpoint=tmp_path / "e.pt", stop_after=2)
    m, r2 = run(checkpoint=tmp_path / "e.pt")
    torch.testing.assert_close(m.weight, ref.weight, rtol=0, atol=0)
    assert r2.history == r.history


def test_time_limit_stops_and_checkpoints(tmp_path):
    torch.manual_seed(0)
    m = nn.Linear(2, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    ck = tmp_path / "t.pt"
    res = fit(lambda model, i: model(torch.ones(1, 2)).sum() ** 2, m, opt,
              options=FitOptions(steps=1000, time_limit=1e-9, checkpoint=ck, progress=False))
    assert res.stopped == "time_limit" and res.step == 0 and ck.exists()
    res = fit(lambda model, i: model(torch.ones(1, 2)).sum() ** 2, m, opt,
              options=FitOptions(steps=3, checkpoint=ck, progress=False))
    assert res.stopped == "done" and res.step == 3


def test_errors(tmp_path):
    m = nn.Linear(2, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="exactly one of steps and epochs"):
        FitOptions()
    with pytest.raises(ValueError, match="exactly one of steps and epochs"):
        FitOptions(steps=2, epochs=2)
    with pytest.raises(ValueError, match="precision must be one of"):
        FitOptions(steps=2, precision="int8")
    with pytest.raises(ValueError, match="time_limit"):
        FitOptions(steps=2, time_limit=float("nan"))
    with pytest.raises(TypeError, match="options must be a FitOptions"):
        fit(lambda model, b: model(torch.ones(1, 2)).sum(), m, opt)
    with pytest.raises(TypeError, match="task must be"):
        fit(3, m, opt, options=FitOptions(steps=1, progress=False))
    with pytest.raises(TypeError, match="scalar tensor"):
        fit(lambda model, b: model(torch.ones(3, 2)), m, opt,
            options=FitOptions(steps=1, progress=False))
    with pytest.raises(FloatingPointError, match="loss became nan at step 1"):
        fit(lambda model, b: model(torch.ones(1, 2)).sum() * float("nan"), m, opt,
            options=FitOptions(steps=2, progress=False))
    ck = tmp_path / "c.pt"
    fit(lambda model, b: model(torch.ones(1, 2)).sum() ** 2, m, opt,
        options=FitOptions(steps=2, progress=False, checkpoint=ck), config={"a": 1})
    with pytest.raises(ValueError, match="configuration"):
        fit(lambda model, b: model(torch.ones(1, 2)).sum() ** 2, m, opt,
            options=FitOptions(steps=3, progress=False, checkpoint=ck), config={"a": 2})
    with pytest.raises(ValueError, match="generator"):
        fit(lambda model, b: model(torch.ones(1, 2)).sum() ** 2, m, opt,
            options=FitOptions(steps=3, progress=False, checkpoint=ck), config={"a": 1},
            generators=[torch.Generator()])
    with pytest.raises(ValueError, match="data iterable is empty"):
        fit(lambda model, b: model(b).sum(), m, opt, [],
            options=FitOptions(steps=1, progress=False))


# ------------------------------------------------------------------------- mixed precision
def test_precision_resolution_never_fails(monkeypatch):
    assert resolve_precision("fp32").dtype is None
    p = resolve_precision("fp16", "cpu")
    assert p.name == "fp32" and "CUDA" in p.note
    monkeypatch.setattr(precision_mod, "cpu_supports_bf16", lambda: False)
    p = resolve_precision("bf16", "cpu")
    assert p.name == "fp32" and p.dtype is None and "no native bfloat16" in p.note
    assert resolve_precision("auto", "cpu").name == "fp32"
    monkeypatch.setattr(precision_mod, "cpu_supports_bf16", lambda: True)
    p = resolve_precision("bf16", "cpu")
    assert p.name == "bf16" and p.dtype is torch.bfloat16 and not p.scaler
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("half")


def test_full_precision_switches_autocast_off():
    a = torch.rand(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
        with full_precision():
            assert not torch.is_autocast_enabled("cpu")
            assert (a @ a).dtype == torch.float32
        assert torch.is_autocast_enabled("cpu")


def _cnn_run(precision: str, steps: int = 30):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
    gen = torch.Generator().manual_seed(0)
    seen = {}

    def step(m, i):
        x = torch.rand(4, 1, 16, 16, generator=gen)
        y = x + 0.1 * torch.randn(x.shape, generator=gen)
        out = m(y)
        seen["dtype"] = out.dtype
        seen["channels_last"] = out.is_contiguous(memory_format=torch.channels_last)
        with full_precision():  # the loss itself in float32
            return ((out.float() - x) ** 2).mean()

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    res = fit(step, model, opt, options=FitOptions(steps=steps, precision=precision,
                                                   progress=False, log_every=steps))
    return model, res, seen


def test_bf16_on_cpu_matches_fp32_within_noise():
    m32, r32, s32 = _cnn_run("fp32")
    assert s32["dtype"] == torch.float32 and r32.precision.name == "fp32"
    m16, r16, s16 = _cnn_run("bf16")
    assert all(p.dtype == torch.float32 for p in m16.parameters())  # float32 master weights
    if not precision_mod.cpu_supports_bf16():
        assert r16.precision.name == "fp32" and r16.precision.note
        return
    assert r16.precision.name == "bf16" and s16["dtype"] == torch.bfloat16
    assert s16["channels_last"]
    # same seeded run: the mean loss over the 30 steps agrees with float32 within bf16 noise
    l32, l16 = r32.history["loss"][-1], r16.history["loss"][-1]
    assert abs(l16 - l32) / l32 < 0.05, (l32, l16)


# ------------------------------------------------------------------------------------- DDP
def _ddp_worker(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = nn.Linear(4, 1)
        x = torch.arange(32.0).reshape(8, 4) / 32
        y = x.sum(1, keepdim=True)

        def step(m, i):
            xb, yb = x[rank::world], y[rank::world]  # each rank its half of the batch
            return ((m(xb) - yb) ** 2).mean()

        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        fit(step, model, opt, options=FitOptions(steps=5, progress=False))
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_gloo_processes_equal_full_batch(tmp_path):
    """Under DDP (2 CPU processes) each rank computes half the batch; the averaged gradients
    equal the full-batch gradient, so both ranks end with the single-process weights."""
    import torch.multiprocessing as mp

    out = str(tmp_path / "w")
    mp.spawn(_ddp_worker, args=(2, f"file://{tmp_path / 'rdzv'}", out), nprocs=2, join=True)
    torch.manual_seed(0)
    ref = nn.Linear(4, 1)
    x = torch.arange(32.0).reshape(8, 4) / 32
    y = x.sum(1, keepdim=True)
    fit(lambda m, i: ((m(x) - y) ** 2).mean(), ref, torch.optim.SGD(ref.parameters(), lr=0.5),
        options=FitOptions(steps=5, progress=False))
    for rank in range(2):
        w = torch.load(f"{out}.{rank}", weights_only=True)
        for k, v in ref.state_dict().items():
            torch.testing.assert_close(w[k], v, rtol=1e-6, atol=1e-7)


def test_public_names():
    for name in ("fit", "FitOptions", "FitResult", "TrainTask", "full_precision",
                 "resolve_precision", "Precision"):
        assert name in sciml_inverse.__all__ and hasattr(sciml_inverse, name)
