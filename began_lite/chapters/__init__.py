"""What the chapters call: training runs with their scores, the stored experiments, and their records.

* :mod:`.runs`: :func:`digit_run`, :func:`faces_run`, :func:`mixture_run` (and the on-disk cache
  of finished runs), the score of generated digits;
* :mod:`.records`: stored results in ``data/results``, provenance, and the rule that checks a
  rerun against its record;
* :mod:`.registry`: every stored experiment, each arm stating its settings in full, and the
  command that remakes them (``python -m began_lite experiment NAME ... --jobs 2``).
"""
