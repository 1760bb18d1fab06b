"""transformers' `Trainer` with what training a Mamba model needs: `MambaTrainer`.

    from transformers import TrainingArguments, set_seed
    from mamba_multimodal.training import MambaTrainer

    args = TrainingArguments("runs/x", weight_decay=0.05, save_steps=500)
    set_seed(args.seed)               # before building the model: the seed then decides the initial weights too
    model = CoupledMambaForSequenceClassification(config)
    MambaTrainer(model=model, args=args, train_dataset=train).train(resume_from_checkpoint=True)

What it changes, and why:
- **Weight decay** skips what `no_decay_parameter_names` lists: Mamba's `A_log` and `D` (mamba_ssm marks both
  `_no_weight_decay`: decay would pull every state's decay rate exp(-exp(A_log)·Δ) towards one constant and the skip
  connection towards zero), every parameter of a norm layer, every bias, position embeddings, and layer-scale
  gammas (MambaVision's `gamma`, `gamma_1`, `gamma_2`: decay would pull each block's residual branch towards zero;
  timm, which trained the released MambaVision, skips every 1-D parameter). transformers' `Trainer` skips only biases
  and norms found by class (LayerNorm) or by name; it decays `A_log`, `D`, BatchNorm, position embeddings and gammas.
- **A NaN or infinite loss stops training** with an error naming the step, before the optimizer applies it (Trainer
  itself logs the previous average instead and trains on: with `logging_nan_inf_filter` a diverged run looks fine in
  the logs).
- **Checkpoints appear whole or not at all.** transformers 5.x writes `checkpoint-N` in place, file by file (model,
  then optimizer, scheduler, RNG states, trainer state), and `resume_from_checkpoint=True` takes the folder with the
  highest N: a crash in the middle of a save leaves a half-written checkpoint that resume picks and fails on (or,
  without `trainer_state.json`, restarts from step 0 with the new weights). Here every process writes into
  `.staging-checkpoint-N/` and the main process renames the finished folder into place (the folder of a killed save is
  hidden from resume and removed at the next save).

Seeds: Trainer seeds (`args.seed`) when `train()` starts, after the model was built; seed yourself before building the
model (`set_seed(args.seed)`, as `train_sentiment` does), or pass `model_init=` so Trainer builds it after seeding. The
data order comes from the seed (accelerate's seedable sampler, `args.data_seed` if set) and is the same whatever the
number of processes.
"""

from __future__ import annotations

import glob
import os
import re
import shutil

import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

# Mamba's SSM parameters (mamba_ssm, transformers' Mamba / Mamba2 and this package use these names).
SSM_PARAMETER_NAMES = ("A_log", "D")
NORM_CLASSES = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)  # _NormBase: BatchNorm*
_NORM_CLASS_NAME = re.compile(r"Norm(?![a-z])")  # MambaRMSNorm, LlamaRMSNorm, RMSNormGated; not Normalize
_POSITION_EMBEDDING = re.compile(r"(?:^|\.)pos(?:ition)?_?emb\w*(?:$|\.)")  # position_embeddings, pos_embed
_LAYER_SCALE = re.compile(r"gamma(?:_\d+)?")  # MambaVision's (and timm's) layer-scale γ: gamma, gamma_1, gamma_2
# Hidden from `get_last_checkpoint` and from checkpoint rotation (both look for `checkpoint-*`).
STAGING_PREFIX, REPLACED_PREFIX = ".staging-", ".replaced-"


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, NORM_CLASSES) or _NORM_CLASS_NAME.search(type(module).__name__) is not None


def _skips_decay(model: nn.Module, name: str, parameter: nn.Parameter) -> bool:
    module_name, _, leaf = name.rpartition(".")
    return (
        leaf in SSM_PARAMETER_NAMES
        or getattr(parameter, "_no_weight_decay", False)  # mamba_ssm's own mark
        or leaf == "bias"
        or leaf.endswith("_bias")
        or _POSITION_EMBEDDING.search(name) is not None
        or (parameter.ndim == 1 and _LAYER_SCALE.fullmatch(leaf) is not None)
        or _is_norm(model.get_submodule(module_name))
    )


def _remove_leftovers(run_dir: str) -> None:
    """Removes the folders of checkpoint saves that died (saves run one at a time: none is in progress)."""
    for prefix in (STAGING_PREFIX, REPLACED_PREFIX):
        for leftover in glob.glob(os.path.join(glob.escape(run_dir), f"{prefix}{PREFIX_CHECKPOINT_DIR}-*")):
            shutil.rmtree(leftover, ignore_errors=True)


def _rename_into_place(staged: str, final: str) -> None:
    """Renames the complete folder `staged` to `final`, replacing an older `final` (a run restarted from an earlier
    checkpoint saves the same step again)."""
    if not os.path.isdir(staged):  # `save_on_each_node` on a shared file system: another node moved it
        return
    if os.path.exists(final):
        replaced = os.path.join(os.path.dirname(final), REPLACED_PREFIX + os.path.basename(final))
        os.rename(final, replaced)
        os.rename(staged, final)
        shutil.rmtree(replaced, ignore_errors=True)
    else:
        os.rename(staged, final)


def no_decay_parameter_names(model: nn.Module) -> list[str]:
    """Names (as `model.named_parameters()` gives them) of the parameters weight decay must skip: Mamba's `A_log` and
    `D`, every parameter of a norm layer (LayerNorm, BatchNorm*, GroupNorm, InstanceNorm, any class named *Norm such
    as RMSNorm), every bias, position embeddings, and 1-D layer-scale gammas (`gamma`, `gamma_1`, ...). Works on
    PEFT-wrapped models (the names then carry PEFT's prefixes; LoRA's `lora_A` / `lora_B` weights decay as Trainer
    decays them)."""
    return [name for name, parameter in model.named_parameters() if _skips_decay(model, name, parameter)]


class MambaTrainer(Trainer):
    """`transformers.Trainer` with Mamba's weight-decay groups, a hard stop on a non-finite loss, and checkpoints that
    are renamed into place once complete (see the module docstring). Arguments are Trainer's."""

    _staging_dir: str | None = None

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        """Trainer's decayed parameters minus `no_decay_parameter_names(model)`."""
        skipped = set(no_decay_parameter_names(model))
        return [name for name in super().get_decay_parameter_names(model) if name not in skipped]

    def training_step(self, model: nn.Module, inputs, num_items_in_batch=None) -> torch.Tensor:
        """Trainer's step (forward and backward); raises before the optimizer step when the loss is not finite.

        Raises:
            RuntimeError: the loss is NaN or infinite, naming the optimizer step (as counted in `checkpoint-N`).
        """
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            step, epoch = self.state.global_step + 1, self.state.epoch or 0.0
            raise RuntimeError(
                f"loss is {loss.float().mean().item()} at step {step} (epoch {epoch:.2f}); training stopped before "
                f"this step changed the weights. Lower the learning rate (now {self._get_learning_rate():g}), check "
                "the inputs and labels for NaN / inf, or train in float32 / bfloat16 rather than float16; "
                "resume_from_checkpoint restarts from the last checkpoint."
            )
        return loss

    # ---- checkpoints: written under a staging name, renamed into place when complete

    def _get_output_dir(self, trial) -> str:
        return self._staging_dir or super()._get_output_dir(trial)

    def _save_checkpoint(self, model: nn.Module, trial) -> None:
        run_dir = self._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = os.path.join(run_dir, STAGING_PREFIX + name)
        if self.args.should_save:
            _remove_leftovers(run_dir)
        self.accelerator.wait_for_everyone()
        # 1. Trainer writes the whole checkpoint, every process its part, into staging/checkpoint-N.
        self._staging_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        except BaseException:
            if self.args.should_save:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()
        # 2. Trainer recorded the best checkpoint under the path it wrote to, in every process.
        staged, final = os.path.join(staging, name), os.path.join(run_dir, name)
        moved_best = self.state.best_model_checkpoint == staged
        if moved_best:
            self.state.best_model_checkpoint = final
        # 3. The main process moves it into place and only then removes checkpoints beyond save_total_limit.
        if self.args.should_save:
            if moved_best:
                self.state.save_to_json(os.path.join(staged, "trainer_state.json"))
            _rename_into_place(staged, final)
            shutil.rmtree(staging, ignore_errors=True)
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()


__all__ = ["MambaTrainer", "no_decay_parameter_names"]
