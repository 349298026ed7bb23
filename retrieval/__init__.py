"""Retrieval of similar setups: robust scaling and the BREAK-separation weighted
setup metric, FAISS indexes per level and approach direction, walk-forward outcome
distributions and their honest evaluation."""
