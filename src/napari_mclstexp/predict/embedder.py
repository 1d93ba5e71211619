"""Image embeddings of uint8 patch batches for prediction, replayed from a CUDA graph on GPUs.

Eager DenseNet-121 inference issues several hundred kernel launches per batch from Python; with tile
reading threads competing for the interpreter, launching becomes the limit of whole-slide prediction.
On CUDA, :class:`ImageEmbedder` pads every batch to one fixed size, runs two eager warm-up batches on a
side stream (cuDNN autotuning) and captures the forward pass (uint8 → float → network → float32
embeddings, bf16 autocast) into a ``torch.cuda.CUDAGraph``; later batches are copied into the graph's
static input and replayed.  Anything that prevents capture falls back to eager inference.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

#: Device types whose forward passes are captured (tests may add "cpu" with a stand-in ``_make_graph``).
GRAPH_DEVICES = ("cuda",)
#: Eager batches of a shape before its capture.
WARMUP_BATCHES = 2


def autocast(device: torch.device, precision: str = "bf16", cache: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (unless ``precision="fp32"``); a no-op elsewhere."""
    if device.type == "cuda" and precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


def to_device(patches: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 patches as a tensor on ``device`` (through pinned memory, asynchronously, on CUDA)."""
    if isinstance(patches, np.ndarray) and not patches.flags.writeable:
        patches = np.array(patches)  # cached patches are read-only memory maps; torch needs writable memory
    x = torch.as_tensor(patches)
    if device.type == "cuda" and not x.is_cuda:
        x = (x if x.is_pinned() else x.pin_memory()).to(device, non_blocking=True)
    return x


class ImageEmbedder:
    """Callable: uint8 ``(B, H, W, 3)`` patches → float32 ``(B, D)`` embeddings on ``device``.

    Parameters
    ----------
    model
        An :class:`~napari_mclstexp.model.mclstexp.MclSTExp` in eval mode on ``device``.
    device
        Where it runs.
    precision
        ``"bf16"`` (autocast on CUDA) or ``"fp32"``.
    batch_size
        On CUDA shorter batches are zero-padded to this many rows, so one set of autotuned kernels and
        one captured graph serve every batch.
    use_graph
        Capture the forward pass as a CUDA graph (CUDA only).
    tta
        Average over the 8 flips/90° rotations (8× the work); ``None``: the model config's ``tta``.
    """

    def __init__(
        self,
        model: Any,
        device: torch.device,
        precision: str = "bf16",
        batch_size: int | None = None,
        use_graph: bool = True,
        tta: bool | None = None,
    ) -> None:
        self.model, self.device, self.precision, self.tta = model, torch.device(device), precision, tta
        self.batch_size = int(batch_size) if batch_size else None
        self.want_graph = bool(use_graph) and self.device.type in GRAPH_DEVICES
        self.fallback_reason: str | None = None
        self._graphs: dict[tuple[int, ...], tuple[Any, torch.Tensor, dict[str, torch.Tensor], Any]] = {}
        self._seen: dict[tuple[int, ...], int] = {}
        self._stream: Any = None

    @property
    def mode(self) -> str:
        """``"graph"`` once a forward pass was captured, else ``"eager"``."""
        return "graph" if self._graphs else "eager"

    def _forward(self, x: torch.Tensor, cache: bool = True) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.device, self.precision, cache):
            return self.model.encode_images(x, tta=self.tta).float()

    def __call__(self, patches: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = to_device(patches, self.device)
        n = x.shape[0]
        if self.device.type == "cuda" and self.batch_size and n < self.batch_size:
            x = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))])
        shape = tuple(x.shape)
        if shape in self._graphs:
            return self._replay(shape, x)[:n]
        if self.want_graph and n and self._seen.get(shape, 0) >= WARMUP_BATCHES:
            self._capture(shape)
            if shape in self._graphs:
                return self._replay(shape, x)[:n]
        self._seen[shape] = self._seen.get(shape, 0) + 1
        if not (self.want_graph and self.device.type == "cuda"):
            return self._forward(x)[:n]
        if self._stream is None:  # warm-up before a capture runs on a side stream
            self._stream = torch.cuda.Stream(self.device)
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream):
            out = self._forward(x)
        current.wait_stream(self._stream)
        return out[:n]

    def _make_graph(self, fn: Any) -> tuple[Any, Any]:
        """Capture ``fn`` (run once, recording) into a CUDA graph; returns ``(replay, graph)``."""
        graph = torch.cuda.CUDAGraph()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # the warm-up's stream: cuBLAS workspaces and handles made there are reused, not created mid-capture
            with torch.cuda.graph(graph, stream=self._stream):
                fn()
        return graph.replay, graph

    def _capture(self, shape: tuple[int, ...]) -> None:
        static_in = torch.zeros(shape, dtype=torch.uint8, device=self.device)
        out: dict[str, torch.Tensor] = {}

        def forward() -> None:
            out["emb"] = self._forward(static_in, cache=False)

        try:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            replay, graph = self._make_graph(forward)
            self._graphs[shape] = (replay, static_in, out, graph)
            log.info("image encoder forward pass for batches of %s captured as a CUDA graph", shape)
        except Exception as err:  # eager inference stays correct
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.want_graph = False
            self.fallback_reason = f"{type(err).__name__}: {err}"
            log.warning("CUDA graph capture of the image encoder failed (%s); predicting eagerly", self.fallback_reason)

    def _replay(self, shape: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
        replay, static_in, out, _ = self._graphs[shape]
        with torch.inference_mode():
            static_in.copy_(x, non_blocking=True)
            replay()
            return out["emb"].clone()
