"""A local Sphinx extension: two fixes to the HTML that the book's browser test found.

* MathJax on every page. A chapter title with math in it (chapter 5's "$k_t$") appears in
  the sidebar of every page, but Sphinx adds MathJax only to pages whose body has math, so
  elsewhere that title showed raw ``\\(k_t\\)``. The "always" assets policy (Sphinx >= 4.1)
  loads MathJax everywhere; it is the local copy (see _config.yml), so no network is used.
* A default colour mode. With none, pydata-sphinx-theme logs "Got invalid theme mode" to
  the console on a reader's first visit. Light, because the figures are drawn on white.
"""


def _default_mode(app, config):
    context = dict(config.html_context or {})  # pydata-sphinx-theme reads it from the context
    context.setdefault("default_mode", "light")
    config.html_context = context


def setup(app):
    app.set_html_assets_policy("always")
    app.connect("config-inited", _default_mode)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
