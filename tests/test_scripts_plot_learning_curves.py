"""scripts/plot_learning_curves.py: curves read from a real `fit` checkpoint, the tail slope on
an exact power law, the redraw from the curves JSON, and one-line errors for bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from script_loader import load_script

from sciml_inverse import FitOptions, TrainTask, fit, save_checkpoint

pytest.importorskip("matplotlib")
S = load_script("scripts/plot_learning_curves.py", "plot_learning_curves")


class _Task(TrainTask):
    """Least squares on a fixed batch; the validation error is the relative parameter error."""

    def __init__(self, model):
        self.model = model

    def loss(self, model, batch):
        return ((model.weight - 2.0) ** 2).sum()

    def on_epoch_end(self, epoch):
        w = self.model.weight.detach()
        return {"val_rel_l2": float((w - 2.0).norm() / torch.full_like(w, 2.0).norm())}


def _run(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    path = tmp_path / "run.pt"
    fit(_Task(model), model, opt, data=[0, 1], options=FitOptions(
        epochs=6, checkpoint=path, progress=False, seed=0))
    return path


def test_curve_from_fit_checkpoint_and_json_redraw(tmp_path, capsys):
    path = _run(tmp_path)
    out, js = tmp_path / "c.png", tmp_path / "c.json"
    assert S.main([f"{path}=toy", "--target", "0.01=goal", "--mark", "100=budget",
                   "--out", str(out), "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    (c,) = data["curves"]
    assert c["label"] == "toy" and c["step"] == [2, 4, 6, 8, 10, 12]
    errs = c["val_rel_l2"]
    assert all(b < a for a, b in zip(errs, errs[1:], strict=False))  # gradient descent contracts
    assert data["targets"] == [{"value": 0.01, "label": "goal"}]
    assert data["marks"] == [{"value": 100.0, "label": "budget"}]
    assert out.stat().st_size > 1000
    assert "toy: last step 12" in capsys.readouterr().out
    out2 = tmp_path / "again.png"
    assert S.main(["--from-json", str(js), "--out", str(out2)]) == 0
    assert out2.stat().st_size > 1000


def test_tail_slope_and_steps_to_target_on_an_exact_power_law():
    steps = [100 * 2 ** k for k in range(9)]
    errors = [3.0 * s ** -0.5 for s in steps]
    assert S.tail_slope(steps, errors) == pytest.approx(-0.5, abs=1e-12)
    curve = {"step": steps, "val_rel_l2": errors}
    need = S.steps_to_reach(curve, 1e-3)
    assert 3.0 * need ** -0.5 == pytest.approx(1e-3, rel=1e-9)
    flat = {"step": steps, "val_rel_l2": [0.1] * len(steps)}
    assert S.steps_to_reach(flat, 1e-3) is None
    assert math.isfinite(S.steps_to_reach(curve, 1.0))  # already reached: the step it was
    nearly_flat = {"step": steps, "val_rel_l2": [0.1 * s ** -1e-4 for s in steps]}
    assert S.steps_to_reach(nearly_flat, 1e-3) == math.inf  # no overflow


def test_bad_input_is_one_line(tmp_path):
    no_hist = save_checkpoint(tmp_path / "x.pt", kind="fit", config={}, state={}, extra={})
    with pytest.raises(SystemExit, match="no validation history"):
        S.main([str(no_hist), "--out", str(tmp_path / "o.png")])
    with pytest.raises(SystemExit, match="no run checkpoint at|No such file|not"):
        S.main([str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o.png")])
    path = _run(tmp_path)
    with pytest.raises(SystemExit, match="is not a number"):
        S.main([str(path), "--target", "abc", "--out", str(tmp_path / "o.png")])
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit, match="not a curves JSON"):
        S.main(["--from-json", str(bad), "--out", str(tmp_path / "o.png")])
