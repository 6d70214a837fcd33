"""collab_jax: fastai's collaborative filtering (Lesson 4) on the learner_jax engine, plus cold start."""

from collab_jax.cold_start import BiasBaseline, cold_start_eval, holdout_entities
from collab_jax.data import NA, CollabDataLoaders
from collab_jax.interpret import Factors, bias_ranking, factor_components, most_rated, pca, recommend
from collab_jax.interpretation import plot_item_pca
from collab_jax.learner import CollabLearner, collab_learner, get_emb_sz
from collab_jax.metadata import HybridInput, MetaEncoder
from collab_jax.models import EmbeddingDotBias, EmbeddingNN, HybridDotBias, emb_sz_rule, sigmoid_range
from collab_jax.synthetic import low_rank_ratings, subspace_r2
from learner_jax.export import load_learner

__all__ = [
    "BiasBaseline", "CollabDataLoaders", "CollabLearner", "EmbeddingDotBias", "EmbeddingNN", "Factors",
    "HybridDotBias", "HybridInput", "MetaEncoder", "NA", "bias_ranking", "cold_start_eval", "collab_learner",
    "emb_sz_rule", "factor_components", "get_emb_sz", "holdout_entities", "load_learner", "low_rank_ratings",
    "most_rated", "pca", "plot_item_pca", "recommend", "sigmoid_range", "subspace_r2",
]
