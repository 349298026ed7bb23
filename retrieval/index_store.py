"""FAISS indexes persisted per level and approach direction under `<lake>/indexes/`: the scaled
vectors of every labelled trigger, with the feature list, the scaling statistics (fitted on the
indexed sessions only) and each vector's trigger, session and outcome."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from retrieval.neighbours import TriggerSet, exact_inner_product_index
from retrieval.scaling import RobustScaling

INDEX_FILE = "vectors.faiss"
META_FILE = "index.json"


def index_folder(indexes_dir: Path, level_id: str, approach_dir: str) -> Path:
    return indexes_dir / f"{level_id}_{approach_dir}"


@dataclass
class SetupIndex:
    level_id: str
    approach_dir: str
    index: faiss.Index
    scaling: RobustScaling
    feature_names: list[str]
    triggers: TriggerSet

    @classmethod
    def build(
        cls, level_id: str, approach_dir: str, triggers: TriggerSet, feature_names: list[str]
    ) -> SetupIndex:
        if triggers.vectors.shape[1] != len(feature_names):
            raise ValueError(
                f"{level_id} {approach_dir}: vectors have {triggers.vectors.shape[1]} dimensions, "
                f"the catalog names {len(feature_names)}"
            )
        scaling = RobustScaling.fit(triggers.vectors)
        index = exact_inner_product_index(scaling.transform(triggers.vectors))
        return cls(level_id, approach_dir, index, scaling, feature_names, triggers)

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
            "metric": "inner product of robustly scaled, L2-normalised vectors (cosine)",
            "feature_names": self.feature_names,
            "scaling": self.scaling.to_json(),
            "trigger_ids": self.triggers.trigger_ids.tolist(),
            "sessions": [str(day) for day in self.triggers.sessions],
            "outcomes": self.triggers.outcomes.tolist(),
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
            RobustScaling.from_json(meta["scaling"]),
            meta["feature_names"],
            triggers,
        )

    def search_before(
        self, vector: np.ndarray, session: np.datetime64, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar indexed triggers of sessions strictly before `session` (the index
        is in time order, so they are a prefix of it)."""
        earlier = int(np.searchsorted(self.triggers.sessions, session, side="left"))
        if earlier == 0:
            return np.empty(0), np.empty(0, dtype=np.int64)
        parameters = faiss.SearchParameters(sel=faiss.IDSelectorRange(0, earlier))
        query = self.scaling.transform(vector[np.newaxis, :].astype(np.float64))
        similarities, positions = self.index.search(query, min(k, earlier), params=parameters)
        found = positions[0] >= 0
        return similarities[0][found], positions[0][found]
