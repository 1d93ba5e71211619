"""Train widget fields for the image encoder: encoder, weights file, frozen/partial/end to end, head."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QFormLayout, QSpinBox, QWidget

from ._common import PathEdit

#: Encoder choices offered (the field is editable: any ``timm:<architecture>`` may be typed).
ENCODER_CHOICES = (
    "preset's",
    "uni",
    "uni2-h",
    "h-optimus-0",
    "h-optimus-1",
    "virchow2",
    "phikon-v2",
    "prov-gigapath",
    "timm:vit_small_patch16_224",
    "resnet50",
    "resnet18",
    "densenet121",
    "smallcnn",
)
TRAINING_MODES = ("auto", "frozen (features cached)", "partial (last N blocks)", "end to end")
HEADS = ("contrastive", "ridge")


class EncoderFields(QWidget):
    """Encoder, its weights file (picker), training mode and head; :meth:`changes` gives the config overrides.

    ``auto`` freezes foundation models (the engine's rule) and trains the others end to end.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.encoder = QComboBox()
        self.encoder.setEditable(True)
        self.encoder.addItems(ENCODER_CHOICES)
        self.encoder.setToolTip(
            "image encoder: a pathology foundation model (needs its weights file), any "
            "timm:<architecture>, or a torchvision CNN"
        )
        self.weights = PathEdit(
            "preset's (ImageNet for default/paper) | none | weights file",
            filter="Weights (*.safetensors *.bin *.pth *.pt)",
        )
        self.weights.setToolTip(
            "encoder weights: a local .safetensors/.bin/.pth file, 'none' (random), "
            "'hub' (download; needs network and, for gated models, a login)"
        )
        self.mode = QComboBox()
        self.mode.addItems(TRAINING_MODES)
        self.mode.setToolTip(
            "frozen: features computed once (cached), only heads train — minutes on a CPU; "
            "partial: fine-tune the encoder's last blocks (GPU)"
        )
        self.unfreeze = QSpinBox()
        self.unfreeze.setRange(1, 48)
        self.unfreeze.setValue(2)
        self.head = QComboBox()
        self.head.addItems(HEADS)
        self.head.setToolTip(
            "contrastive: mclSTExp retrieval from the reference bank; "
            "ridge: PCA 256 + ridge on frozen features (HEST recipe)"
        )
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Encoder", self.encoder)
        form.addRow("Weights", self.weights)
        form.addRow("Training", self.mode)
        form.addRow("Unfreeze last", self.unfreeze)
        form.addRow("Head", self.head)

    def changes(self) -> dict:
        """TrainConfig overrides for the chosen fields (empty when all are left at the preset's)."""
        from ..model.foundation_registry import encoder_options  # no torch in the GUI process

        changes: dict = {}
        if self.weights.text():
            changes["weights"] = self.weights.text()
        name = self.encoder.currentText().strip()
        mode = self.mode.currentText()
        freeze = {"frozen (features cached)": True, "partial (last N blocks)": True, "end to end": False}.get(mode)
        unfreeze = self.unfreeze.value() if mode.startswith("partial") else None
        return encoder_options(
            changes,
            encoder=None if name in ("", "preset's") else name,
            freeze=freeze,
            unfreeze_last=unfreeze,
            head=self.head.currentText(),
        )
