"""began_lite: BEGAN and EBGAN, small and complete, for the executable BEGAN book.

The public API below is what the chapters and the README use, and it is kept stable:
readers' code depends on it (``tests/test_api.py`` fails when a chapter imports a name
that is not here). The chapter helpers of :mod:`began_lite.experiments`,
:mod:`began_lite.metrics` and :mod:`began_lite.latent` load on first use, so that the
command line starts without them.
"""
import importlib

from .autoencoder import fit_autoencoder, reconstruction_losses
from .config import TrainConfig
from .data import load_digits, load_faces
from .device import seed_everything
from .mixtures import mixture_modes
from .equilibrium import EquilibriumController, simulate_controller
from .losses import began_losses, ebgan_losses, pulling_away_term, reconstruction_loss
from .models import Discriminator, Generator, count_parameters, sample_z
from .objectives import BEGANObjective
from .schedules import PlateauHalver
from .step import TrainingDiverged, gan_step
from .train import Trainer
from .wasserstein import (empirical_w1, empirical_w2, gaussian_w2, gaussian_w2_by_coupling_search,
                          gaussian_w2_terms, jensen_bound, sqrtm_psd)

from . import plotting, sliders, wasserstein, widgets  # noqa: E402  (figure helpers; heavy imports happen inside functions)

__version__ = "0.1.0"

# name -> module, imported on first use (PEP 562)
_LAZY = {
    **dict.fromkeys(["digit_run", "faces_run", "mixture_run", "digit_classifier", "score_digits",
                     "SAMPLE_SEED"], "chapters.runs"),
    **dict.fromkeys(["stored_result", "check_rerun", "RESULTS_DIR", "load_showcase", "load_showcase_run"],
                   "chapters.records"),
    **dict.fromkeys(["EXPERIMENTS"], "chapters.registry"),
    **dict.fromkeys(["effective_pixels", "normality_stats"], "normality"),
    **dict.fromkeys(["digit_features", "frechet_distance", "precision_recall", "centroids"],
                    "evaluate"),
    **dict.fromkeys(["interpolate", "invert"], "latent"),
    **dict.fromkeys(["design_effect", "shuffle_pixels"], "normality"),
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'began_lite' has no attribute {name!r}")


__all__ = [
    # the step, the loop and its settings (chapters 3-7)
    "gan_step", "Trainer", "TrainConfig", "TrainingDiverged", "PlateauHalver", "seed_everything",
    # the objective the step plugs in (chapter 4 subclasses it into option (a))
    "BEGANObjective",
    # data
    "load_digits", "load_faces", "mixture_modes",
    # the maths: losses, the controller, Wasserstein distances (chapters 1-5)
    "began_losses", "ebgan_losses", "pulling_away_term", "reconstruction_loss",
    "EquilibriumController", "simulate_controller",
    "empirical_w1", "empirical_w2", "gaussian_w2", "gaussian_w2_by_coupling_search", "gaussian_w2_terms",
    "jensen_bound", "sqrtm_psd",
    # networks and the autoencoder on its own (chapters 2, 6)
    "Discriminator", "Generator", "count_parameters", "sample_z", "fit_autoencoder", "reconstruction_losses",
    # chapter helpers: runs, stored results, scores, the latent space (chapters 2-7)
    *_LAZY,
    # figure and widget modules
    "plotting", "sliders", "wasserstein", "widgets",
]
