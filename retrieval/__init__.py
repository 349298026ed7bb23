"""Retrieval of similar setups (SPEC 10): robust scaling, FAISS indexes per level and approach
direction, walk-forward outcome distributions and their honest evaluation."""
