"""Interactive widgets for the chapters (ipywidgets). Each has a static twin in plotting.py
that draws its default state, which is what the rendered HTML book shows."""
from __future__ import annotations

__all__ = ["w2_widget"]


def w2_widget(m1: float = 0.0, s1: float = 1.0, m2: float = 2.0, s2: float = 0.5):
    """Sliders for two 1-D Gaussians; redraws both densities and the two terms of W2^2."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .plotting import plot_gaussians_w2

    sliders = dict(
        m1=W.FloatSlider(value=m1, min=-5, max=5, step=0.1, description="m1"),
        s1=W.FloatSlider(value=s1, min=0.1, max=3, step=0.05, description="σ1"),
        m2=W.FloatSlider(value=m2, min=-5, max=5, step=0.1, description="m2"),
        s2=W.FloatSlider(value=s2, min=0.1, max=3, step=0.05, description="σ2"),
    )

    def draw(m1, s1, m2, s2):
        plot_gaussians_w2(m1, s1, m2, s2)
        plt.show()

    out = W.interactive_output(draw, sliders)
    box = W.VBox([W.HBox(list(sliders.values())[:2]), W.HBox(list(sliders.values())[2:]), out])
    display(box)
    return box
