# The two commands a newcomer needs: `make book` and `make test`.
# Both create .venv and install the pinned stack first (nothing installed by hand).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard book/[0-9]*.ipynb))

.PHONY: install test unit nbval nbval-foreign book test-book mathjax lab execute clean help

help:
	@echo "make book     build the rendered book into _build/html"
	@echo "make test     unit tests + nbval on every chapter"
	@echo "make nbval-foreign  nbval on every chapter under CPU kernels other than this machine's"
	@echo "make test-book  build the book and open every page in headless Chromium, offline"
	@echo "make lab      open the chapters in JupyterLab"
	@echo "make execute  re-run every chapter and store its outputs (after editing one)"

# pip byte-compiles every installed module (about half the install). Keep it: where
# PYTHONDONTWRITEBYTECODE=1 is set (it is on the machine we develop on), an install without
# .pyc files makes every Python process compile what it imports (the stack the kernels
# import: 15-19 s instead of 8 s), and a `make test` right after such an install took 624 s.
$(STAMP): requirements.txt book/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP) $(BOOK_STAMP)

# `make book` needs only the book's own requirements (book/requirements.txt: Jupyter Book and
# Plotly), about half a minute on a fresh machine; `make test` installs the whole stack.
BOOK_STAMP := $(VENV)/.book-installed
$(BOOK_STAMP): book/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -r book/requirements.txt
	touch $(BOOK_STAMP)

install: $(STAMP)

# tests/browser needs a built book and Chromium: `make test-book` runs it.
# Two pytest-xdist workers (JOBS=1 for one process), each test file kept on one worker
# (--dist loadfile) so that a file's module fixtures (a trained run, two DDP ranks) are
# built once. Every test runs with one thread (tests/conftest.py), so two workers use both
# cores of the CI machine instead of one.
JOBS ?= 2
unit: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile tests --ignore=tests/browser

# Chapters memoise finished runs (began_lite.experiments.run_cache_dir) so that chapters
# sharing a run train it once; nbval and execute give them a fresh, empty cache per
# invocation, so nothing computed by an earlier run (another build, other settings) is reused.
# Chapters run two at a time (JOBS), each kernel on one thread (OMP_NUM_THREADS=1): on the
# 2-core CI machine two one-thread trainings do 1.29x the steps per second of one two-thread
# training (`python -m began_lite bench --processes` measures it). The stored outputs come from one-thread
# kernels too (`make execute`), so nbval compares like with like: the thread count changes
# the last bits of a sum, and a training run carries them forward.
# glibc's malloc keeps freed memory for reuse instead of mapping fresh pages every training
# step (what began_lite.perf.allocator.tune_malloc does for the command line; appendix "Benchmarks"):
# the same numbers, fewer page faults. Other C libraries ignore the two variables.
# CHAPTER_ENV starts a shell command: a fresh run cache, removed on exit, and the kernels' settings.
CHAPTER_ENV = cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && \
	BEGAN_LITE_CACHE=$$cache OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BEGAN_LITE_PROFILE=quick \
	MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
NBVAL = -p no:cacheprovider -n $(JOBS) --dist loadscope --nbval --nbval-current-env \
	--nbval-sanitize-with book/sanitize.cfg
nbval: $(STAMP)
	$(CHAPTER_ENV) $(PY) -m pytest -q $(NBVAL) $(NOTEBOOKS)

# `make test` is `make unit` and `make nbval` in one pytest session, so that the two workers
# share all of it (--dist loadscope: a test file or a notebook stays on one worker, in
# order). Work is handed out in the order collected (--no-loadscope-reorder), and
# tests/conftest.py orders it: the chapters first, longest first (by the run time their last
# execution recorded), then the test files holding a test marked `slow`, then the rest,
# which fill the gaps at the end.
test: $(STAMP)
	$(CHAPTER_ENV) $(PY) -m pytest -q $(NBVAL) --no-loadscope-reorder $(NOTEBOOKS) tests --ignore=tests/browser

# The chapters again under another set of CPU kernels than the one torch picks on this machine:
# what another CPU computes. Three libraries choose kernels by processor: ATen (torch's own,
# ATEN_CPU_CAPABILITY), oneDNN (convolutions, ONEDNN_MAX_CPU_ISA) and MKL (matrix products,
# MKL_CBWR; MKL also chooses by vendor, so an AMD reader gets a path an Intel machine never takes
# unless told). All three are moved at once. MKL is moved with MKL_CBWR, which fixes its path on any
# vendor's processor: on the AMD EPYC we develop on, MKL_ENABLE_INSTRUCTIONS changes no bit of a
# matrix product, while MKL_CBWR=AVX2 (an Intel AVX2 machine's path) and COMPATIBLE each do. Trained networks
# then differ in their last bits, which a GAN run carries into the second digit; the chapters mask
# those outputs (tag nbval-ignore-output), assert every claim within a measured margin, and check
# reruns of stored runs exactly only where processor, kernels, threads and torch match the record
# (began_lite.check_rerun). AVX512 here -> AVX2; AVX2 -> the default kernels, oneDNN at AVX (no FMA:
# other bits than its AVX2 path and than SSE4.1) and MKL's COMPATIBLE path. oneDNN at AVX rather than
# SSE4.1 because SSE4.1 is its slowest path: on the profile at n = 16 the seven chapters took 1951 s of one
# core under this set and 2431 s with oneDNN at SSE4.1 (796 s natively), and with SSE4.1 `.ci/run` took
# 38 min on CI, over its 35. The SSE4.1 set passed there; it was not remade at n = 24 (its record retired).
# `python -m began_lite.chapters.kernels` records what each assert saw under a set (this one:
# kernel-sets/foreign-avx.json; tests/test_kernels.py checks that the set here has a passing record).
# tests/test_api.py (the chapters' imports, a second) comes along so that tests/conftest.py orders the work.
CAPABILITY = $(PY) -c 'import torch; print(torch.backends.cpu.get_cpu_capability())'
nbval-foreign: $(STAMP)
	@native=$$($(CAPABILITY)); \
	case $$native in \
	  AVX512*) foreign="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2" ;; \
	  AVX2) foreign="ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX MKL_CBWR=COMPATIBLE" ;; \
	  *) echo "CPU kernels here: $$native; no other set to choose, nothing to run"; exit 0 ;; \
	esac; \
	echo "CPU kernels: native $$native, foreign $$(env $$foreign $(CAPABILITY)) ($$foreign)"; \
	$(CHAPTER_ENV) env $$foreign $(PY) -m pytest -q $(NBVAL) --no-loadscope-reorder $(NOTEBOOKS) tests/test_api.py

execute: $(STAMP)
	printf '%s\n' $(NOTEBOOKS) | { $(CHAPTER_ENV) xargs -P $(JOBS) -I{} \
	  $(VENV)/bin/jupyter execute --inplace --timeout=1200 {}; }

lab: $(STAMP)
	$(PY) -m pip install -q jupyterlab
	$(VENV)/bin/jupyter lab book/

# MathJax 3 for the offline book, from the npm registry. Pinned: npm's `latest` is v4.
# The tarball is cached in .cache/npm (git-ignored) and checked against its sha256; only
# the entry script (the "-full" build: every TeX extension bundled, so nothing is
# autoloaded), its woff-v2 fonts and its licence are copied into book/_static/mathjax/
# (git-ignored). _config.yml points Sphinx's mathjax_path there.
MATHJAX_VERSION := 3.2.2
MATHJAX_SHA256 := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
MATHJAX_TGZ := .cache/npm/mathjax-$(MATHJAX_VERSION).tgz
MATHJAX_DIR := book/_static/mathjax
MATHJAX_JS := $(MATHJAX_DIR)/tex-chtml-full.js

$(MATHJAX_TGZ):
	mkdir -p $(@D)
	cd $(@D) && npm pack --loglevel=error --cache "$$PWD/_cacache" mathjax@$(MATHJAX_VERSION) >/dev/null
	echo "$(MATHJAX_SHA256)  $@" | sha256sum --check --quiet || { rm -f $@; exit 1; }

$(MATHJAX_JS): $(MATHJAX_TGZ)
	rm -rf $(MATHJAX_DIR)
	mkdir -p $(MATHJAX_DIR)
	tar -xzf $< -C $(MATHJAX_DIR) --strip-components=1 package/LICENSE
	tar -xzf $< -C $(MATHJAX_DIR) --strip-components=2 package/es5/tex-chtml-full.js \
	  --wildcards 'package/es5/output/chtml/fonts/woff-v2/*.woff'
	touch $@

mathjax: $(MATHJAX_JS)

# Plotly for the sliders (began_lite/sliders.py), offline: the pinned plotly package
# (requirements.txt) ships plotly.min.js; it is copied into book/_static/plotly/ (git-ignored),
# and book/_ext loads it only on the pages that have a slider. A new pin remakes the venv's
# stamp, and so the copy.
PLOTLY_JS := book/_static/plotly/plotly.min.js
$(PLOTLY_JS): $(BOOK_STAMP)
	mkdir -p $(@D)
	cp "$$($(PY) -c 'import pathlib, plotly; print(pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js")')" $@

# Notebooks are not executed (execute_notebooks: off), so a clean build takes seconds:
# _build/html is rebuilt from scratch (no stale pages), and --all re-reads every page so
# that -W sees every warning, not only those of the pages changed since the last build.
book: $(BOOK_STAMP) $(MATHJAX_JS) $(PLOTLY_JS)
	rm -rf _build/html
	$(VENV)/bin/jupyter-book build -W --keep-going --all .
	$(PY) book/check_offline.py _build/html
	@echo "The book is in _build/html: open _build/html/index.html"

# The book as a reader sees it: every page of a fresh `make book` opened in headless
# Chromium (Debian's `chromium`: CHROMIUM=/path to use another; Playwright downloads none),
# network cut off; screenshots in _build/screenshots/. See tests/browser/test_book_browser.py.
CHROMIUM ?= /usr/bin/chromium
test-book: $(STAMP)
	@test -x $(CHROMIUM) || { echo "no Chromium at $(CHROMIUM): apt-get install -y --no-install-recommends chromium"; exit 1; }
	$(MAKE) --no-print-directory book
	BEGAN_LITE_BOOK_TEST=1 BEGAN_LITE_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q -p no:cacheprovider tests/browser

clean:
	rm -rf _build
