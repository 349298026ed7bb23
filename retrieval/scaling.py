"""Robust per-dimension scaling of trigger vectors, fitted on training sessions only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826
CLIP = 8.0
EPSILON = 1e-6


@dataclass(frozen=True)
class RobustScaling:
    """(x - median) / (1.4826 MAD + 1e-6), clipped to +-8, zero-MAD dimensions set to 0."""

    median: np.ndarray
    mad: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> RobustScaling:
        if len(vectors) == 0:
            raise ValueError("robust scaling needs at least one training vector")
        median = np.median(vectors, axis=0)
        mad = np.median(np.abs(vectors - median), axis=0)
        return cls(median=median, mad=mad)

    def scale(self, vectors: np.ndarray) -> np.ndarray:
        scaled = np.clip((vectors - self.median) / (MAD_TO_SIGMA * self.mad + EPSILON), -CLIP, CLIP)
        scaled[:, self.mad == 0] = 0.0
        return scaled

    def to_json(self) -> dict[str, list[float]]:
        return {"median": self.median.tolist(), "mad": self.mad.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> RobustScaling:
        return cls(median=np.asarray(data["median"]), mad=np.asarray(data["mad"]))
