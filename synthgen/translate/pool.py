"""The history pool: critics see a mix of current and earlier generated images.

Shrivastava et al.'s trick, as CycleGAN uses it: up to `size` generated images are kept;
each new image is, with probability ½, swapped for a random stored one (the stored one goes
to the critic, the new one into the pool), otherwise passed through. Until the pool is full
every image is stored and passed through. A size of 0 disables the pool.
"""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    """A history pool of generated tensors.

    Args:
        size: images kept (50 in CycleGAN); 0 passes everything through.
        seed: seed of the pool's own torch.Generator (draws the swaps).
    """

    def __init__(self, size: int = 50, seed: int = 0):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = int(size)
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(int(seed))

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        """Images for the critic in place of `batch`.

        Args:
            batch: (B, C, H, W) generated images (detached here).

        Returns:
            (B, C, H, W) on batch's device and dtype: each row the new image or a stored one.
        """
        batch = batch.detach()
        if self.size == 0:
            return batch
        out = []
        for image in batch:
            stored = image.to("cpu", copy=True)
            if len(self.images) < self.size:
                self.images.append(stored)
                out.append(image)
                continue
            if torch.rand((), generator=self.generator).item() < 0.5:
                k = int(torch.randint(len(self.images), (), generator=self.generator))
                old = self.images[k]
                self.images[k] = stored
                out.append(old.to(batch.device, batch.dtype))
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (CPU) and the generator state, for a checkpoint."""
        stacked = torch.stack(self.images) if self.images else torch.zeros(0)
        return {"size": self.size, "images": stacked,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.size = int(state["size"])
        images = state["images"]
        self.images = [t.clone() for t in images] if images.numel() else []
        self.generator.set_state(state["generator"])
