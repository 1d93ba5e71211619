"""One optimisation step of the trainer, run eagerly or replayed from a captured CUDA graph.

A step is: gather the batch's uint8 patches, expression and positions by index → float images →
augmentation → forward (bf16 autocast on CUDA) → contrastive loss → backward → optimizer update.
Eagerly, DenseNet-121 alone issues about 2,000 kernel launches per step from Python; at the paper's
batch of 128 the GPU finishes them faster than the CPU can issue them.  On one CUDA device (no DDP)
:class:`TrainStep` therefore runs a few eager warm-up steps on a side stream (cuDNN autotuning, optimizer
state), captures the whole step once into a ``torch.cuda.CUDAGraph`` and from then on only copies the
step's indices into a static buffer and replays the graph: one launch per step.

Requirements the step body meets for capture: fixed batch shape (the trainer drops the last partial
batch), no host synchronisation (``data.augment`` draws all randomness on the device and avoids data-
dependent shapes there), constants built without host → device copies, a capturable fused optimizer
whose learning rate is a device tensor (schedulers then ``fill_`` it), and autocast without its weight
cache.  If capture fails for any reason, training continues eagerly and the reason is logged.

With ``TrainConfig.compile`` the image encoder is also ``torch.compile``-d in place (its state-dict keys
do not change).  Compilation happens during the first step, before any capture; if it fails (no C++
compiler or Triton, an unsupported operator), that step is rerun eagerly and the reason is logged.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..data.augment import augment_batch

log = logging.getLogger(__name__)

#: Device types whose steps are captured (tests may add "cpu" with a stand-in ``_make_graph``).
GRAPH_DEVICES = ("cuda",)

#: Eager steps before the capture (cuDNN autotuning, lazy optimizer state, allocator warm-up).
WARMUP_STEPS = 3


def backward_step(loss: torch.Tensor, model: Any, ctx: Any) -> None:
    """``backward()`` of the global contrastive loss with the DDP recipe of :mod:`.distributed`.

    The loss over gathered embeddings is scaled by ``world_size`` (DDP averages gradients); a
    learnable temperature enters the loss on every rank, so its gradient is unscaled afterwards to the
    single-process value.

    Parameters
    ----------
    loss
        Loss over the gathered (global-batch) embeddings.
    model
        The unwrapped model (its ``log_temperature`` is a parameter when the temperature is learnt).
    ctx
        The :class:`~napari_mclstexp.train.distributed.DistContext`.
    """
    (loss * ctx.world_size).backward()
    if isinstance(model.log_temperature, torch.nn.Parameter):
        ctx.unscale_shared_grads([model.log_temperature])


def optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """``opt.state_dict()`` in the eager form: float learning rates, ``capturable`` off.

    A checkpoint written while the step runs as a CUDA graph then resumes on any device.
    """
    state = opt.state_dict()
    for group in state["param_groups"]:
        if torch.is_tensor(group.get("lr")):
            group["lr"] = float(group["lr"])
        if "capturable" in group:
            group["capturable"] = False
    return state


def scheduler_state(sched: Any) -> dict[str, Any]:
    """``sched.state_dict()`` with its last learning rates as floats (device tensors, or views of them
    in torch < 2.10, in graph mode), so a checkpoint resumes on any device."""
    state = sched.state_dict()
    if "_last_lr" in state:
        state["_last_lr"] = [float(v) for v in state["_last_lr"]]
    return state


def uncompile_encoder(model: Any) -> None:
    """Undo ``model.image_encoder.compile()``: the encoder runs eagerly again (same parameters)."""
    model.image_encoder._compiled_call_impl = None  # the attribute ``nn.Module.compile`` sets


def make_capturable(opt: torch.optim.Optimizer, device: torch.device) -> None:
    """Prepare ``opt`` for CUDA-graph capture: ``capturable`` on, learning rates as device tensors.

    A captured update reads the lr from device memory; LR schedulers then update that tensor in place
    (``fill_``), so a schedule keeps working across replays.
    """
    for group in opt.param_groups:
        if not torch.is_tensor(group["lr"]):
            group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        group["capturable"] = True


class TrainStep:
    """Callable doing one training step; switches itself to CUDA-graph replay when allowed.

    Parameters
    ----------
    model
        The unwrapped :class:`~napari_mclstexp.model.mclstexp.MclSTExp` (train mode).
    net
        What runs the forward pass (``model`` itself, or its DDP wrapper).
    opt
        The optimizer (fused Adam/AdamW on CUDA).
    ctx
        The :class:`~napari_mclstexp.train.distributed.DistContext`.
    source
        The trainer's batch source: ``get(idx)`` → uint8 (B, H, W, 3) on the device, ``data`` the
        whole patch tensor, ``staging`` non-empty when ``data`` lives in pinned host memory.
    expr, pos
        (N, G) float expression and (N, 2) long positions of all training spots on the device.
    cfg
        The :class:`~napari_mclstexp.model.presets.TrainConfig`.
    batch
        The fixed batch size of every step.
    use_graph
        Capture after :data:`WARMUP_STEPS` eager steps (honoured only on one CUDA device).
    """

    def __init__(
        self,
        model: Any,
        net: Any,
        opt: torch.optim.Optimizer,
        ctx: Any,
        source: Any,
        expr: torch.Tensor,
        pos: torch.Tensor,
        cfg: Any,
        batch: int,
        use_graph: bool,
    ) -> None:
        self.model, self.net, self.opt, self.ctx, self.source = model, net, opt, ctx, source
        self.expr, self.pos, self.cfg, self.batch = expr, pos, cfg, int(batch)
        self.device = expr.device
        cuda = self.device.type == "cuda"
        self.bf16 = cuda and cfg.precision == "bf16"
        self.want_graph = bool(use_graph) and self.device.type in GRAPH_DEVICES and getattr(ctx, "world_size", 1) == 1
        self.eager_steps = 0
        self.graph: Callable[[], None] | None = None  # replays the captured step
        self.fallback_reason: str | None = None
        self._stream: Any = None
        self._static: dict[str, torch.Tensor] = {}
        self._lr_tensors: list[torch.Tensor] = []
        self.compiled = bool(getattr(cfg, "compile", False))
        self.compile_failure: str | None = None
        if self.compiled:
            model.image_encoder.compile()

    @property
    def mode(self) -> str:
        """``"graph"`` once captured, else ``"eager"``."""
        return "graph" if self.graph is not None else "eager"

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        # no weight-cast cache: under capture the casts must be part of the graph
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)

    def _body(self, x_u8: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Forward, loss, backward, update; returns the detached loss (0-d, on the device)."""
        model, cfg = self.model, self.cfg
        x = model.to_input(x_u8)
        x = augment_batch(
            x,
            flips=cfg.flips,
            rot90=cfg.rot90,
            rotate_deg=cfg.rotate_deg,
            jitter=tuple(cfg.color_jitter),
            rotate_mode=cfg.rotate_mode,
            jitter_order=cfg.jitter_order,
            stain=cfg.stain_augment,
        )
        if model.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            img, spot = self.net(x, self.expr[idx], self.pos[idx])
        loss = model.loss(self.ctx.gather(img), self.ctx.gather(spot))
        backward_step(loss, model, self.ctx)
        self.opt.step()
        return loss.detach()

    def __call__(self, idx_src: torch.Tensor, idx_dev: torch.Tensor) -> torch.Tensor:
        """One step on the spots ``idx_src`` (on the source's index device) = ``idx_dev`` (on the device).

        Returns
        -------
        torch.Tensor
            The step's loss (0-d float32 on the device; not synchronised).
        """
        if self.graph is not None:
            return self._replay(idx_src, idx_dev)
        if self.want_graph and self.eager_steps >= WARMUP_STEPS:
            self._capture()
            if self.graph is not None:
                return self._replay(idx_src, idx_dev)
        self.eager_steps += 1
        with self._warmup_stream():
            self.opt.zero_grad(set_to_none=True)
            x_u8 = self.source.get(idx_src)
            if self.compiled and self.eager_steps == 1:  # compiles now: forward, then backward
                rng = self._rng_state()
                try:
                    loss = self._body(x_u8, idx_dev)
                except Exception as err:  # raised before opt.step(): nothing was updated
                    self._uncompile(err)
                    self.opt.zero_grad(set_to_none=True)
                    self._rng_state(rng)  # the rerun draws the same augmentation and dropout
                else:
                    log.info("image encoder compiled with torch.compile")
                    return loss
            return self._body(x_u8, idx_dev)

    def _rng_state(self, state: tuple | None = None) -> tuple:
        """The default generators' states of the CPU and the training device; restores ``state`` if given."""
        cuda = self.device.type == "cuda"
        if state is not None:
            torch.set_rng_state(state[0])
            if cuda:
                torch.cuda.set_rng_state(state[1], self.device)
            return state
        return torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if cuda else None

    def _uncompile(self, err: BaseException) -> None:
        """Drop the compiled encoder after a failed compilation; the caller reruns the step eagerly."""
        uncompile_encoder(self.model)
        self.compiled = False
        root: BaseException = err
        for _ in range(8):  # torch wraps the real reason (BackendCompilerFailed.inner_exception)
            inner = getattr(root, "inner_exception", None) or root.__cause__
            if not isinstance(inner, BaseException) or inner is root:
                break
            root = inner
        lines = str(root).strip().splitlines()
        self.compile_failure = f"{type(root).__name__}: {lines[0] if lines else ''}"
        log.warning("torch.compile of the image encoder failed (%s); training eagerly", self.compile_failure)

    @contextlib.contextmanager
    def _warmup_stream(self) -> Iterator[None]:
        """Steps before a capture run on a side stream, as the CUDA-graph recipe requires."""
        if not (self.want_graph and self.device.type == "cuda"):
            yield
            return
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.device)
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream):
            yield
        current.wait_stream(self._stream)

    def _make_graph(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Capture ``fn`` (run once, recording) into a CUDA graph; returns its ``replay``."""
        graph = torch.cuda.CUDAGraph()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # the warm-up's stream: cuBLAS workspaces and handles made there are reused, not created mid-capture
            with torch.cuda.graph(graph, stream=self._stream):
                fn()
        self._graph_object = graph  # keeps the graph (and its memory pool) alive
        return graph.replay

    def _capture(self) -> None:
        """Capture one whole step into a CUDA graph; on failure keep training eagerly."""
        dev, b = self.device, self.batch
        cuda = dev.type == "cuda"
        lrs = [g["lr"] for g in self.opt.param_groups]
        static: dict[str, torch.Tensor] = {"idx": torch.zeros(b, dtype=torch.long, device=dev)}
        on_host = bool(getattr(self.source, "staging", None))
        if on_host:
            static["x"] = torch.zeros((b, *self.source.data.shape[1:]), dtype=torch.uint8, device=dev)

        def step() -> None:
            # set_to_none here records no kernel: the backward then *writes* the gradients, on every replay
            self.opt.zero_grad(set_to_none=True)
            x_u8 = static["x"] if on_host else self.source.data[static["idx"]]
            static["loss"] = self._body(x_u8, static["idx"])

        try:
            if cuda:  # (a stand-in graph elsewhere re-runs Python, which reads a float lr afresh)
                make_capturable(self.opt, dev)
            if cuda:
                torch.cuda.synchronize(dev)
                torch.cuda.empty_cache()  # the warm-up's cached blocks: the graph gets its own pool
            self.graph = self._make_graph(step)
            self._static = static
            self._lr_tensors = [g["lr"] for g in self.opt.param_groups if torch.is_tensor(g["lr"])]
            log.info("training step captured as a CUDA graph after %d eager steps", self.eager_steps)
        except Exception as err:  # any capture problem: eager training stays correct
            if cuda:
                torch.cuda.synchronize(dev)
            for group, lr in zip(self.opt.param_groups, lrs, strict=True):
                group["lr"] = float(lr) if torch.is_tensor(lr) else lr
                group["capturable"] = False
            self.graph = None
            self.want_graph = False
            self.fallback_reason = f"{type(err).__name__}: {err}"
            log.warning("CUDA graph capture of the training step failed (%s); training eagerly", self.fallback_reason)

    def after_schedule(self) -> None:
        """Call after ``scheduler.step()``: keep the captured lr tensors current.

        Schedulers of recent torch versions update a tensor lr in place; one that assigns a float
        instead would leave the graph reading a stale rate, so the float is copied into the tensor.
        """
        if self.graph is None or not self._lr_tensors:
            return
        for group, lr in zip(self.opt.param_groups, self._lr_tensors, strict=True):
            if group["lr"] is not lr:
                lr.fill_(float(group["lr"]))
                group["lr"] = lr

    def _replay(self, idx_src: torch.Tensor, idx_dev: torch.Tensor) -> torch.Tensor:
        s = self._static
        s["idx"].copy_(idx_dev, non_blocking=True)
        if "x" in s:
            s["x"].copy_(self.source.get(idx_src), non_blocking=True)
        self.graph()
        return s["loss"].clone()
