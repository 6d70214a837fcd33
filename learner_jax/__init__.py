"""learner_jax: the training engine shared by ulmfit_jax, tabular_jax and collab_jax."""

from learner_jax.data import DataLoader, DataLoaders, Loader, prefetch
from learner_jax.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, L1LossFlat, MSELossFlat
from learner_jax.model_io import ModelOutput

__all__ = [
    "BCEWithLogitsLossFlat", "CrossEntropyLossFlat", "DataLoader", "DataLoaders", "L1LossFlat", "Loader",
    "MSELossFlat", "ModelOutput", "prefetch",
]
