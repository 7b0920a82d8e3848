"""A local Sphinx extension: two fixes to the HTML that the book's browser test found, and Plotly.

* MathJax on every page. A chapter title with math in it (chapter 5's "$k_t$") appears in
  the sidebar of every page, but Sphinx adds MathJax only to pages whose body has math, so
  elsewhere that title showed raw ``\\(k_t\\)``. The "always" assets policy (Sphinx >= 4.1)
  loads MathJax everywhere; it is the local copy (see _config.yml), so no network is used.
* A default colour mode. With none, pydata-sphinx-theme logs "Got invalid theme mode" to
  the console on a reader's first visit. Light, because the figures are drawn on white.
* Plotly (4.8 MB) only on the pages with a slider (``began_lite.sliders``: a div of class
  ``began-slider``), from ``_static/plotly/plotly.min.js``, which ``make book`` copies from the
  pinned plotly package; ``book/check_offline.py`` checks both ways.
"""


def _default_mode(app, config):
    context = dict(config.html_context or {})  # pydata-sphinx-theme reads it from the context
    context.setdefault("default_mode", "light")
    config.html_context = context


def _plotly_where_needed(app, pagename, templatename, context, doctree):
    # Called while this page is written: Sphinx adds the script to this page only.
    if 'class="began-slider"' in context.get("body", ""):
        app.add_js_file("plotly/plotly.min.js")


def setup(app):
    app.set_html_assets_policy("always")
    app.connect("config-inited", _default_mode)
    app.connect("html-page-context", _plotly_where_needed)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
