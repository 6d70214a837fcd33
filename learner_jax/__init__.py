"""learner_jax: the training engine shared by ulmfit_jax, tabular_jax and collab_jax."""

from learner_jax.callbacks import (
                                   Callback,
                                   CancelFitException,
                                   CheckpointCallback,
                                   EarlyStoppingCallback,
                                   NonFiniteLossError,
                                   NormLoggerCallback,
                                   Preempted,
                                   SaveModelCallback,
                                   TerminateOnNaNCallback,
)
from learner_jax.data import DataLoader, DataLoaders, Loader, prefetch
from learner_jax.download import URLs, download_url, untar_data
from learner_jax.export import load_learner
from learner_jax.host_memory import HOST_MALLOC_TUNED  # tunes malloc on import, before JAX starts its CPU client
from learner_jax.interpretation import ClassificationInterpretation
from learner_jax.learner import Learner, minimum, steep, valley
from learner_jax.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, L1LossFlat, MSELossFlat
from learner_jax.metrics import F1Score, Metric, accuracy, error_rate, mae, mse, perplexity, rmse
from learner_jax.model_io import ModelOutput
from learner_jax.steps import StepSpec, TrainState, make_eval_step, make_train_step

__all__ = [
    "BCEWithLogitsLossFlat", "Callback", "CancelFitException", "CheckpointCallback", "ClassificationInterpretation",
    "CrossEntropyLossFlat", "DataLoader", "DataLoaders", "EarlyStoppingCallback", "F1Score",
    "HOST_MALLOC_TUNED", "L1LossFlat", "Learner", "Loader", "MSELossFlat", "Metric", "ModelOutput",
    "NonFiniteLossError", "NormLoggerCallback", "Preempted",
    "SaveModelCallback",
    "StepSpec", "TerminateOnNaNCallback", "TrainState", "URLs", "accuracy", "download_url", "error_rate",
    "load_learner", "mae", "make_eval_step", "make_train_step", "minimum", "mse", "perplexity", "prefetch", "rmse",
    "steep", "untar_data", "valley",
]
