"""ulmfit_jax."""

# public API: models and learners (issue 6), text data (issue 5)
from learner_jax.export import load_learner as load_learner
from learner_jax.interpretation import ClassificationInterpretation as ClassificationInterpretation
from ulmfit_jax.corpus import Corpus as Corpus
from ulmfit_jax.learner import LMLearner as LMLearner
from ulmfit_jax.learner import TextClassifierLearner as TextClassifierLearner
from ulmfit_jax.learner import bidir_preds as bidir_preds
from ulmfit_jax.learner import language_model_learner as language_model_learner
from ulmfit_jax.learner import text_classifier_learner as text_classifier_learner
from ulmfit_jax.models import AWD_LSTM as AWD_LSTM
from ulmfit_jax.models import awd_lstm_clas_config as awd_lstm_clas_config
from ulmfit_jax.models import awd_lstm_lm_config as awd_lstm_lm_config
from ulmfit_jax.models import get_language_model as get_language_model
from ulmfit_jax.models import get_text_classifier as get_text_classifier
from ulmfit_jax.pretrained import PretrainedLM as PretrainedLM
from ulmfit_jax.pretrained import available_models as available_models
from ulmfit_jax.pretrained import pretrained_lm as pretrained_lm
from ulmfit_jax.sentencepiece_tok import SentencePieceTokenizer as SentencePieceTokenizer
from ulmfit_jax.text_data import TextDataLoaders as TextDataLoaders
from ulmfit_jax.text_loaders import LMDataLoader as LMDataLoader
from ulmfit_jax.text_loaders import SortedDL as SortedDL
from ulmfit_jax.text_rules import SPECIAL_TOKENS as SPECIAL_TOKENS
from ulmfit_jax.text_rules import undo_rules as undo_rules
from ulmfit_jax.tokenize import Tokenizer as Tokenizer
from ulmfit_jax.tokenize import iter_tokenize as iter_tokenize
from ulmfit_jax.tokenize import tokenize1 as tokenize1
from ulmfit_jax.tokenize import tokenize_texts as tokenize_texts
from ulmfit_jax.vocab import make_vocab as make_vocab
from ulmfit_jax.vocab import numericalize as numericalize
from ulmfit_jax.word_tokenizer import SpacyTokenizer as SpacyTokenizer
from ulmfit_jax.word_tokenizer import WordTokenizer as WordTokenizer
