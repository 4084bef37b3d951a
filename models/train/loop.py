"""The train/resume skeleton the three trainers (train-score, train-classifiers, train-lr-attrs) share.

A run directory is new or resumed (`open_run`); `Loop` owns the bookkeeping around the
trainer's own step: the EMA of the weights, the step counter, the logging windows (the loss is
read back from the device only at log and checkpoint steps), validation every `val_steps`
with the best-so-far rule, snapshots, checkpoints every `ckpt_steps` steps or `ckpt_minutes`
minutes, a wall-time limit, and SIGTERM/SIGINT -> checkpoint -> exit 0 so that `--resume`
continues exactly. The trainer supplies the model, the optimiser and three callbacks:

    step(step) -> (loss tensor, {extra train-log fields})     one optimiser step, model in train mode
    validate(eval_model) -> (metric, {val-log fields})         lower metric is better
    on_best(step, record)                                      persist the best weights (optional)

Checkpoint (out/checkpoint.pt): step, model, ema (when there is one), opt, rng, best_val,
elapsed, model_config, train, plus the trainer's `extra_state()` (its kind, constants, ...).
"""
import copy
import math
import os
import sys
import time

import torch

from . import common
from .common import UserError

CHECKPOINT = "checkpoint.pt"


def open_run(prog, out, resume):
    """(checkpoint dict or None, JsonlLog) for the run directory out. A run is never
    overwritten: an existing checkpoint needs --resume; --resume without one starts anew."""
    ck_path = os.path.join(out, CHECKPOINT)
    resuming = resume and os.path.exists(ck_path)
    if not resuming and os.path.exists(ck_path):
        raise UserError(f"{ck_path} exists: pass --resume to continue it or choose another --out")
    if resume and not resuming:
        print(f"{prog}: no checkpoint in {out}, starting a new run", file=sys.stderr)
    os.makedirs(out, exist_ok=True)
    log = common.JsonlLog(os.path.join(out, "train.jsonl"))
    ck = torch.load(ck_path, map_location="cpu") if resuming else None
    return ck, log


def resumed_train_args(ck, steps):
    """The run's training arguments from its checkpoint; --steps may extend (or shorten) it."""
    targs = dict(ck["train"])
    if steps is not None:
        targs["steps"] = steps
    return targs


def default_ema_decay(step, ema):
    """min(ema, (1 + step) / (10 + step)): a short memory early, `ema` once trained."""
    return min(ema, (1.0 + step) / (10.0 + step))


class Loop:
    def __init__(self, prog, out, log, device, model, opt, targs, mcfg, ema=None,
                 ema_decay=default_ema_decay, extra_state=dict):
        """ema: the decay ceiling (targs["ema"]) to keep an EMA copy of model, or None for none."""
        self.prog, self.out, self.log, self.device = prog, out, log, device
        self.model, self.opt, self.targs, self.mcfg = model, opt, targs, mcfg
        self.ema_ceiling, self.ema_decay, self.extra_state = ema, ema_decay, extra_state
        self.ema = None
        if ema is not None:
            self.ema = copy.deepcopy(model).eval()
            for p in self.ema.parameters():
                p.requires_grad_(False)
        self.step, self.best, self.elapsed = 0, math.inf, 0.0

    @property
    def eval_model(self):
        return self.ema if self.ema is not None else self.model

    def restore(self, ck, best_metric=None, **log_fields):
        """Continue from checkpoint ck. best_metric: the val key of out/best.pt, which may be
        newer than the checkpoint (killed in between) and then holds the better best."""
        self.model.load_state_dict(ck["model"])
        if self.ema is not None:
            self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["opt"])
        self.step, self.best, self.elapsed = ck["step"], ck["best_val"], ck.get("elapsed", 0.0)
        bp = os.path.join(self.out, "best.pt")
        if best_metric and os.path.exists(bp):
            self.best = min(self.best, torch.load(bp, map_location="cpu").get("val", {}).get(best_metric, math.inf))
        common.set_rng_state(ck["rng"], self.device)
        self.log.truncate_after(self.step)
        self.log.write("resume", step=self.step, steps=self.targs["steps"], **log_fields)

    def save(self, reason):
        state = {"step": self.step, "model": self.model.state_dict(), "opt": self.opt.state_dict(),
                 "rng": common.rng_state(self.device), "best_val": self.best, "elapsed": self.elapsed,
                 "model_config": self.mcfg, "train": self.targs}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        state.update(self.extra_state())
        common.atomic_torch_save(state, os.path.join(self.out, CHECKPOINT))
        self.log.write("ckpt", step=self.step, reason=reason)

    def _update_ema(self):
        d = self.ema_decay(self.step, self.ema_ceiling)
        with torch.no_grad():
            ep, mp = list(self.ema.parameters()), [q.detach() for q in self.model.parameters()]
            torch._foreach_mul_(ep, d)
            torch._foreach_add_(ep, mp, alpha=1 - d)
            for be, bm in zip(self.ema.buffers(), self.model.buffers()):
                be.copy_(bm)

    def _validate(self, validate, on_best):
        metric, rec = validate(self.eval_model)
        improved = metric < self.best
        if improved:
            self.best = metric
            if on_best is not None:
                on_best(self.step, rec)
        self.log.write("val", step=self.step, best=improved, **rec)

    def _snapshot(self):
        os.makedirs(os.path.join(self.out, "snapshots"), exist_ok=True)
        common.atomic_torch_save({"step": self.step, "ema": self.eval_model.state_dict(), "model_config": self.mcfg,
                                  "train": self.targs},
                                 os.path.join(self.out, "snapshots", f"step_{self.step:07d}.pt"))

    def run(self, step_fn, validate, on_best=None, max_minutes=0.0, started=None):
        """Train to targs["steps"]. Returns True when the run finished (after a last validation
        and the final checkpoint, with a `done` log line), False when a signal stopped it
        (checkpoint written, resume with --resume)."""
        t = self.targs
        started = time.monotonic() if started is None else started
        val_steps, snap_steps = t.get("val_steps") or 0, t.get("snapshot_steps") or 0
        ckpt_minutes = t.get("ckpt_minutes") or 0
        last_ckpt = time.monotonic()
        t_win, n_win, l_win = time.monotonic(), 0, 0.0
        with common.StopFlag() as stop:
            while self.step < t["steps"] and not stop.stop:
                t0 = time.monotonic()
                self.model.train()
                loss, fields = step_fn(self.step)
                if self.ema is not None:
                    self._update_ema()
                self.step += 1
                step = self.step
                l_win = l_win + loss.detach().float()
                self.elapsed += time.monotonic() - t0
                n_win += 1
                out_of_time = max_minutes > 0 and time.monotonic() - started > 60 * max_minutes
                ckpt_due = step % t["ckpt_steps"] == 0 or (ckpt_minutes and time.monotonic() - last_ckpt > 60 * ckpt_minutes)
                if step % t["log_steps"] == 0 or step == t["steps"] or ckpt_due or out_of_time:
                    lv = float(l_win) / n_win
                    if not math.isfinite(lv):
                        self.log.write("error", step=step, msg="non-finite loss")
                        raise RuntimeError(f"{self.prog}: non-finite loss by step {step}; last checkpoint is intact")
                    now = time.monotonic()
                    self.log.write("train", step=step, loss=lv, **{k: float(v) for k, v in fields.items()},
                                   sec_per_step=(now - t_win) / n_win, elapsed=round(self.elapsed, 1))
                    t_win, n_win, l_win = now, 0, 0.0
                if val_steps and step % val_steps == 0:
                    self._validate(validate, on_best)
                if snap_steps and step % snap_steps == 0:
                    self._snapshot()
                if ckpt_due:
                    self.save("periodic")
                    last_ckpt = time.monotonic()
                if out_of_time:
                    self.log.write("time", step=step, max_minutes=max_minutes)
                    break
            if stop.stop:
                self.save(f"signal {stop.signum}")
                self.log.write("stop", step=self.step, signal=stop.signum)
                print(f"{self.prog}: stopped by signal {stop.signum} at step {self.step}; resume with --resume",
                      file=sys.stderr)
                return False
        if not (val_steps and self.step % val_steps == 0):
            self._validate(validate, on_best)
        self.save("done")
        self.log.write("done", step=self.step, elapsed=round(self.elapsed, 1), best_val=self.best)
        return True
