"""The similarity of two setups: robust scaling, then each dimension weighted by how
well it alone separated BREAK from the other outcomes on the training triggers, then L2
normalisation, so an inner product is a weighted cosine. Everything is fitted on the training
sessions only.

Why the weights: a trigger vector holds hundreds of features, few of which carry the setup's
signature; unweighted, the cosine is dominated by the many that do not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.evaluation import column_aucs
from retrieval.scaling import RobustScaling


def break_separation_weights(scaled: np.ndarray, is_break: np.ndarray) -> np.ndarray:
    """|AUC - 0.5| of each dimension for BREAK against the other outcomes; equal weights while
    the training triggers hold only one of the two."""
    if is_break.all() or not is_break.any():
        return np.ones(scaled.shape[1])
    return np.abs(column_aucs(is_break, scaled) - 0.5)


@dataclass(frozen=True)
class SetupMetric:
    scaling: RobustScaling
    weights: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray, outcomes: np.ndarray) -> SetupMetric:
        """`outcomes` of the training triggers: BREAK / REJECT / CHOP / WHIPSAW."""
        scaling = RobustScaling.fit(vectors)
        return cls(scaling, break_separation_weights(scaling.scale(vectors), outcomes == "BREAK"))

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        weighted = self.scaling.scale(vectors) * self.weights
        norms = np.linalg.norm(weighted, axis=1, keepdims=True)
        # an all-zero vector stays zero: similar to nothing
        return np.ascontiguousarray(
            np.divide(weighted, norms, out=np.zeros_like(weighted), where=norms > 0),
            dtype=np.float32,
        )

    def to_json(self) -> dict[str, object]:
        return {"scaling": self.scaling.to_json(), "weights": self.weights.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SetupMetric:
        return cls(RobustScaling.from_json(data["scaling"]), np.asarray(data["weights"]))
