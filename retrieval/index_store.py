"""FAISS indexes persisted per level and approach direction under `<lake>/indexes/`: every
labelled trigger under the metric fitted on all of them, with the feature list, the scaling
statistics and dimension weights, and each vector's trigger, session and outcome. They answer
setups newer than every indexed session (a live trigger); a historical trigger's neighbours
come from `retrieval.neighbours.search_earlier`, whose metric knows only earlier sessions.

A live query is one vector at a time: an exact scan of every vector costs about 0.2 us per
vector (25 ms at 120,000 x 320 on this machine's cores), so an index past `EXACT_SEARCH_LIMIT`
vectors is an inverted file: k-means lists, a query scanning the lists nearest to it (exact
inner products within them). The walk-forward evaluation searches a whole session's triggers
at once and stays exact (`search_earlier`); `spymaster bench --only retrieval` prints the live
index's recall against exact search."""

from __future__ import annotations

import json
import math
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
# below this many vectors an exact scan answers a live query in under 4 ms
EXACT_SEARCH_LIMIT = 20_000
# an inverted file's lists: 4 sqrt(n), at least 39 vectors each (what k-means asks to train)
LISTS_PER_SQRT_VECTORS = 4
MIN_VECTORS_PER_LIST = 39
TRAINING_VECTORS_PER_LIST = 64
# a query scans 1/16 of the lists: about 6 % of the vectors
PROBED_SHARE = 16


def live_search_index(scaled: np.ndarray) -> faiss.Index:
    """Exact below EXACT_SEARCH_LIMIT vectors; above, an inverted file with exact inner
    products in the probed lists. Deterministic: the same vectors give the same file (k-means
    starts from faiss's fixed seed)."""
    vectors, dimensions = scaled.shape
    if vectors < EXACT_SEARCH_LIMIT:
        return exact_inner_product_index(scaled)
    lists = int(min(LISTS_PER_SQRT_VECTORS * math.sqrt(vectors), vectors // MIN_VECTORS_PER_LIST))
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(dimensions), dimensions, lists, faiss.METRIC_INNER_PRODUCT
    )
    # k-means on a sample of TRAINING_VECTORS_PER_LIST a list (faiss draws it with its seed)
    index.cp.max_points_per_centroid = TRAINING_VECTORS_PER_LIST
    index.train(scaled)
    index.add(scaled)
    index.nprobe = max(1, lists // PROBED_SHARE)
    return index


def search_method(index: faiss.Index) -> str:
    """How a live query searches the index, in words (index.json, the bench)."""
    if isinstance(index, faiss.IndexIVFFlat):
        return f"inverted file: {index.nprobe} of {index.nlist} k-means lists scanned exactly"
    return "exact: every vector"


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
        index = live_search_index(metric.transform(triggers.vectors))
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
            "search": search_method(self.index),
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
