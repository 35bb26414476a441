"""Experiment bookkeeping of ``examples/nde_*.py`` (private: not part of ``sciml.nde``'s API).

Sweep summaries (the Pareto choice of regularization weights), text tables and plots of the
NFE-vs-metric trade-off; JSON goes through :func:`sciml_inverse.write_json`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["mean_std", "summarize_sweep", "choose_weights", "format_summary", "pareto_plot"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation of a list of numbers.

    Raises
    ------
    ValueError
        If ``values`` is empty.
    """
    v = [float(x) for x in values]
    if not v:
        raise ValueError("mean_std of an empty list")
    m = sum(v) / len(v)
    return m, (sum((x - m) ** 2 for x in v) / len(v)) ** 0.5



# ---------------------------------------------------------------------------------------------
# experiment bookkeeping shared by examples/nde_*.py
# ---------------------------------------------------------------------------------------------
_FIELDS = ("nfe", "metric", "train_seconds", "predict_seconds", "val_nfe", "val_metric",
           "dynamics")


def summarize_sweep(runs: dict, *, regularizers: Sequence[str],
                    acceptable: Callable[[float, float], bool], higher_is_better: bool,
                    baselines: Sequence[str] = ("vanilla",)) -> dict:
    """Mean ± std per run key, and the chosen λ per regularizer.

    Parameters
    ----------
    runs : dict
        ``key -> {"method", "lambda", "nfe": [...], "metric": [...], "train_seconds": [...],
        "predict_seconds": [...], "val_nfe": [...], "val_metric": [...]}`` (lists over seeds);
        must hold ``"vanilla"``.
    regularizers : sequence of str
        Methods whose keys (``run["method"]``) form a λ sweep.
    acceptable : callable
        ``acceptable(val_metric, vanilla_val_metric)``: whether a λ keeps the validation metric
        within tolerance. Among acceptable λ the one with the fewest validation NFE is chosen;
        if none is acceptable, the one with the best validation metric is reported with
        ``within_tolerance = False``.
    higher_is_better : bool
        Direction of the metric (accuracy: True, MSE: False).
    baselines : sequence of str
        Run keys reported as they are (vanilla first).

    Returns
    -------
    dict
        ``{"sweep": {key: {field: {"mean", "std"}, "method", "lambda"}}, "methods": {name: row}}``
        where a regularizer's row adds ``chosen_lambda``, ``within_tolerance``, ``nfe_ratio``,
        ``metric_ratio``, ``predict_speedup`` and ``train_speedup`` w.r.t. vanilla.

    Raises
    ------
    ValueError
        If ``runs`` has no ``"vanilla"`` entry.
    """
    if "vanilla" not in runs:
        raise ValueError("runs must contain a 'vanilla' entry")

    def ms(v: Sequence[float]) -> dict:
        m, s = mean_std(v)
        return {"mean": m, "std": s}

    table = {k: {f: ms(r[f]) for f in _FIELDS if f in r}
             | {"method": r["method"], "lambda": r["lambda"]} for k, r in runs.items()}
    return {"sweep": table, "methods": choose_weights(table, regularizers=regularizers,
                                                      acceptable=acceptable,
                                                      higher_is_better=higher_is_better,
                                                      baselines=baselines)}


def choose_weights(table: dict, *, regularizers: Sequence[str],
                   acceptable: Callable[[float, float], bool], higher_is_better: bool,
                   baselines: Sequence[str] = ("vanilla",)) -> dict:
    """The ``"methods"`` part of :func:`summarize_sweep` from its ``"sweep"`` table (so a saved
    sweep can be re-summarized with another rule)."""
    van = table["vanilla"]
    methods = {b: _row(table[b]) for b in baselines if b in table}
    sign = -1.0 if higher_is_better else 1.0
    for method in regularizers:
        cands = [k for k, r in table.items() if r["method"] == method]
        if not cands:
            continue
        ok = [k for k in cands
              if acceptable(table[k]["val_metric"]["mean"], van["val_metric"]["mean"])]
        if ok:
            chosen = min(ok, key=lambda k: table[k]["val_nfe"]["mean"])
        else:
            chosen = min(cands, key=lambda k: sign * table[k]["val_metric"]["mean"])
        row = _row(table[chosen])
        row["chosen_lambda"] = table[chosen]["lambda"]
        row["within_tolerance"] = bool(ok)
        row["nfe_ratio"] = row["nfe"] / van["nfe"]["mean"]
        row["metric_ratio"] = row["metric"] / van["metric"]["mean"]
        row["predict_speedup"] = van["predict_seconds"]["mean"] / row["predict_seconds"]
        row["train_speedup"] = van["train_seconds"]["mean"] / row["train_seconds"]
        methods[method] = row
    return methods


def _row(r: dict) -> dict:
    out = {}
    for f in ("nfe", "metric", "train_seconds", "predict_seconds"):
        out[f] = r[f]["mean"]
        out[f + "_std"] = r[f]["std"]
    return out


def format_summary(res: dict, metric_name: str) -> str:
    """A text table of ``res["methods"]`` (as from :func:`summarize_sweep`)."""
    lines = [f"{'method':>8s} {'λ':>6s} {'NFE':>15s} {metric_name:>22s} {'train s':>14s} "
             f"{'predict s':>18s} {'NFE ratio':>9s} {'speedup':>7s}"]
    for name, r in res["methods"].items():
        lam = r.get("chosen_lambda")
        flag = "" if r.get("within_tolerance", True) else "  (no λ within tolerance: best val)"
        lines.append(
            f"{name:>8s} {'' if lam is None else f'{lam:g}':>6s} "
            f"{r['nfe']:7.1f} ± {r['nfe_std']:5.1f} {r['metric']:11.4g} ± {r['metric_std']:8.2g} "
            f"{r['train_seconds']:6.1f} ± {r['train_seconds_std']:5.1f} "
            f"{r['predict_seconds']:8.4f} ± {r['predict_seconds_std']:7.4f} "
            f"{r.get('nfe_ratio', 1.0):9.2f} {r.get('predict_speedup', 1.0):7.2f}{flag}")
    return "\n".join(lines)


def pareto_plot(res: dict, path: str, *, metric_name: str, regularizers: Sequence[str],
                log_metric: bool = False) -> None:
    """Save the λ sweep as NFE-vs-metric curves (one per regularizer) with the baselines, PNG,
    written atomically. Needs matplotlib (imported lazily)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    markers = "os^v<>"
    for method, marker in zip(regularizers, markers, strict=False):
        pts = sorted((r["lambda"], r["nfe"]["mean"], r["metric"]["mean"])
                     for r in res["sweep"].values() if r["method"] == method)
        if not pts:
            continue
        ax.plot([p[1] for p in pts], [p[2] for p in pts], marker=marker, label=method)
        for lam, x, y in pts:
            ax.annotate(f"{lam:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for name, r in res["methods"].items():
        if name in regularizers or "nfe" not in r:
            continue
        ax.plot([r["nfe"]], [r["metric"]], marker="*" if name == "vanilla" else "D", ms=10,
                ls="none", label=name)
    ax.set_xlabel("NFE at prediction (test set)")
    ax.set_ylabel(metric_name)
    if log_metric:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("λ sweep (point labels: λ), mean over seeds")
    fig.tight_layout()
    from sciml_inverse import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
