"""FAISS indexes persisted per level and approach direction under `<lake>/indexes/`: every
labelled trigger under the metric fitted on all of them, with the feature list, the scaling
statistics and dimension weights, and each vector's trigger, session and outcome. They answer
setups newer than every indexed session (a live trigger); a historical trigger's neighbours
come from `retrieval.neighbours.search_earlier`, whose metric knows only earlier sessions."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from retrieval.metric import SetupMetric
from retrieval.neighbours import TriggerSet, exact_inner_product_index

INDEX_FILE = "vectors.faiss"
META_FILE = "index.json"


def index_folder(indexes_dir: Path, level_id: str, approach_dir: str) -> Path:
    return indexes_dir / f"{level_id}_{approach_dir}"


@dataclass
class SetupIndex:
    level_id: str
    approach_dir: str
    index: faiss.Index
    metric: SetupMetric
    feature_names: list[str]
    triggers: TriggerSet
    minutes_since_open: np.ndarray  # of each indexed trigger: the time-of-day base rate

    @classmethod
    def build(
        cls,
        level_id: str,
        approach_dir: str,
        triggers: TriggerSet,
        feature_names: list[str],
        minutes_since_open: np.ndarray,
    ) -> SetupIndex:
        if triggers.vectors.shape[1] != len(feature_names):
            raise ValueError(
                f"{level_id} {approach_dir}: vectors have {triggers.vectors.shape[1]} dimensions, "
                f"the catalog names {len(feature_names)}"
            )
        metric = SetupMetric.fit(triggers.vectors, triggers.outcomes)
        index = exact_inner_product_index(metric.transform(triggers.vectors))
        return cls(
            level_id, approach_dir, index, metric, feature_names, triggers, minutes_since_open
        )

    def save(self, indexes_dir: Path) -> Path:
        """Write the folder beside its final place, then swap it in: readers see the old
        index or the new one, never half of each."""
        final = index_folder(indexes_dir, self.level_id, self.approach_dir)
        staging = final.with_name(f".{final.name}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        faiss.write_index(self.index, str(staging / INDEX_FILE))
        meta = {
            "level_id": self.level_id,
            "approach_dir": self.approach_dir,
            "similarity": "inner product of robustly scaled, BREAK-separation weighted, "
            "L2-normalised vectors (a weighted cosine)",
            "feature_names": self.feature_names,
            "metric": self.metric.to_json(),
            "trigger_ids": self.triggers.trigger_ids.tolist(),
            "sessions": [str(day) for day in self.triggers.sessions],
            "outcomes": self.triggers.outcomes.tolist(),
            "minutes_since_open": self.minutes_since_open.tolist(),
        }
        (staging / META_FILE).write_text(json.dumps(meta))
        retired = final.with_name(f".{final.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        if final.exists():
            os.replace(final, retired)
        os.replace(staging, final)
        shutil.rmtree(retired, ignore_errors=True)
        return final

    @classmethod
    def load(cls, indexes_dir: Path, level_id: str, approach_dir: str) -> SetupIndex:
        folder = index_folder(indexes_dir, level_id, approach_dir)
        if not (folder / META_FILE).exists():
            raise FileNotFoundError(
                f"{folder}: no index for {level_id} {approach_dir} (run `spymaster build`)"
            )
        meta = json.loads((folder / META_FILE).read_text())
        if "minutes_since_open" not in meta:
            raise ValueError(f"{folder}: an index from an older build; run `spymaster build`")
        index = faiss.read_index(str(folder / INDEX_FILE))
        triggers = TriggerSet(
            trigger_ids=np.asarray(meta["trigger_ids"]),
            sessions=np.asarray(meta["sessions"], dtype="datetime64[D]"),
            vectors=np.empty((index.ntotal, 0)),
            outcomes=np.asarray(meta["outcomes"]),
        )
        if index.ntotal != len(triggers.trigger_ids):
            raise ValueError(
                f"{folder}: {index.ntotal} vectors for {len(triggers.trigger_ids)} triggers"
            )
        return cls(
            level_id,
            approach_dir,
            index,
            SetupMetric.from_json(meta["metric"]),
            meta["feature_names"],
            triggers,
            np.asarray(meta["minutes_since_open"], dtype=np.float64),
        )

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Similarities and positions of the k most similar indexed triggers of each vector."""
        similarities, positions = self.index.search(
            self.metric.transform(np.atleast_2d(vectors).astype(np.float64)),
            min(k, self.index.ntotal),
        )
        return similarities.astype(np.float64), positions
