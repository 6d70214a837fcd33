"""tabular_jax: fastai's tabular workflow (procs, TabularDataLoaders, TabularModel, tabular_learner) in JAX."""

from learner_jax.export import load_learner
from learner_jax.interpretation import ClassificationInterpretation
from learner_jax.metrics import accuracy, error_rate, mae, mse, rmse
from tabular_jax.adult import adult_sample, read_adult_sample, read_uci_adult, to_adult_sample, uci_adult
from tabular_jax.data import TabularDataLoaders
from tabular_jax.interpret import permutation_importance
from tabular_jax.learner import TabularLearner, tabular_learner
from tabular_jax.models import TabularModel, emb_sz_rule, get_emb_sz, tabular_config
from tabular_jax.procs import Categorify, FillMissing, FillStrategy, Normalize, TabularProc
from tabular_jax.table import TabularPandas
from tabular_jax.targets import CategoryBlock, MultiCategoryBlock, RegressionBlock

__all__ = [
    "Categorify", "CategoryBlock", "ClassificationInterpretation", "FillMissing", "FillStrategy",
    "MultiCategoryBlock", "Normalize", "RegressionBlock", "TabularDataLoaders", "TabularLearner", "TabularModel",
    "TabularPandas", "TabularProc", "accuracy", "adult_sample", "emb_sz_rule", "error_rate", "get_emb_sz",
    "load_learner", "mae", "mse", "permutation_importance", "read_adult_sample", "read_uci_adult", "rmse",
    "tabular_config", "tabular_learner", "to_adult_sample", "uci_adult",
]
