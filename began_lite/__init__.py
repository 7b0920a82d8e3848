"""began_lite: BEGAN and EBGAN, small and complete, for the executable BEGAN book.

The public API below is stable: the chapters and readers depend on it.
"""
from .config import PROFILES, TrainConfig, pick_device, resolve_profile, seed_everything
from .data import load_digits, load_faces, load_image_folder, mixture_2d, mixture_modes
from .equilibrium import EquilibriumController, convergence_measure
from .losses import began_losses, ebgan_losses, pulling_away_term, reconstruction_loss
from .models import (Decoder, Discriminator, Encoder, Generator, MLPDiscriminator, MLPGenerator,
                     count_parameters, sample_z)
from .train import fit_autoencoder, reconstruction_losses
from .wasserstein import (empirical_w1, empirical_w2, empirical_wasserstein, gaussian_w2,
                          gaussian_w2_squared, gaussian_w2_terms, jensen_bound)

from . import plotting, widgets  # noqa: E402  (figure helpers; heavy imports happen inside functions)

__version__ = "0.1.0"

__all__ = [
    "PROFILES", "TrainConfig", "pick_device", "resolve_profile", "seed_everything",
    "load_digits", "load_faces", "load_image_folder", "mixture_2d", "mixture_modes",
    "EquilibriumController", "convergence_measure",
    "began_losses", "ebgan_losses", "pulling_away_term", "reconstruction_loss",
    "Decoder", "Discriminator", "Encoder", "Generator", "MLPDiscriminator", "MLPGenerator",
    "count_parameters", "sample_z",
    "fit_autoencoder", "reconstruction_losses",
    "empirical_w1", "empirical_w2", "empirical_wasserstein", "gaussian_w2", "gaussian_w2_squared",
    "gaussian_w2_terms", "jensen_bound",
]
