#!/usr/bin/env bash
# The whole test suite, as CI runs it: the README's second command is `pip install -e ".[dev]" && bash tools/test.sh`.
#  1. nbdev_clean, then fail if it changed anything (notebooks must be committed clean);
#  2. nbdev_export, then fail if it changed anything (the library must be in sync with the notebooks);
#  3. nbdev_test: every notebook runs top to bottom (its assert cells are tests);
#  4. pytest tests/ on TensorFlow (includes the README-in-sync check; the docs site: tests/test_docs.py builds
#     the home page, the ELBO chapter and a widget fixture offline and opens every page in headless Chromium; and
#     the live dashboard: tests/test_lab.py starts JupyterLab on 127.0.0.1, runs tests/fixtures/lab_dashboard.ipynb
#     in headless Chromium and checks that the dashboard's samples, curves and status change while the VAE trains,
#     that no request leaves the machine and that the replay slider works; screenshots in test-artifacts/lab/);
#     Before the notebooks, JAX's and PyTorch's CPU builds are installed (PyTorch's from PyTorch's own CPU wheel index, as its
#     install page documents; the package index's torch is the CUDA build with ~19 nvidia/triton packages, so it is
#     only the fallback where that index is unreachable): tests/test_devices.py runs JAX workers on four virtual
#     CPU devices and two joined processes, and TensorFlow and PyTorch workers, whatever backend pytest runs on
#     (and so does the devices chapter);
#  5. the backend-sensitive tests (`-m backends`) again on JAX and on PyTorch;
#  6. a total over all of it, printed last.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
RESULTS=test-artifacts/results
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
NOTEBOOKS_PASSED=0 NOTEBOOKS_FAILED=0
START=$(date +%s)

step() { echo; echo "=== [$(( $(date +%s) - START )) s] $*"; }
snapshot() { git status --porcelain --untracked-files=all; git diff; }

total() {
  python - "$RESULTS" "$NOTEBOOKS_PASSED" "$NOTEBOOKS_FAILED" "$1" <<'PY'
import sys, glob
import xml.etree.ElementTree as ET
folder, nb_passed, nb_failed, extra_failed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
passed, failed, skipped = nb_passed, nb_failed + extra_failed, 0
for path in sorted(glob.glob(f"{folder}/*.xml")):
    suite = ET.parse(path).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    n, f, e, s = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    print(f"  pytest on {path.rsplit('/', 1)[-1][:-4]}: {n - f - e - s} passed, {f + e} failed, {s} skipped")
    passed, failed, skipped = passed + n - f - e - s, failed + f + e, skipped + s
print(f"  notebooks (nbdev_test): {nb_passed} passed, {nb_failed} failed")
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
PY
}

finish() {  # finish STATUS [WHAT FAILED]
  step "summary${2:+ (failed: $2)}"
  total "$([ -n "${2:-}" ] && echo 1 || echo 0)"
  echo "elapsed: $(( $(date +%s) - START )) s"
  exit "$1"
}

# The browser tests (tests/test_docs.py, tests/test_lab.py) drive Debian's chromium.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    step "installing Debian's chromium for the browser tests"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || echo "could not install chromium: the browser tests will fail"
  else
    echo "The browser tests need Debian's chromium at /usr/bin/chromium: sudo apt-get install chromium"
  fi
fi

step "nbdev_clean: notebooks must be committed clean"
before=$(snapshot)
nbdev_clean || finish 1 "nbdev_clean"
if [ "$(snapshot)" != "$before" ]; then
  git status --short; echo "nbdev_clean changed files: run nbdev_clean and commit."; finish 1 "notebooks not clean"
fi

step "nbdev_export: the library must be in sync with the notebooks"
before=$(snapshot)
nbdev_export || finish 1 "nbdev_export"
if [ "$(snapshot)" != "$before" ]; then
  git status --short; echo "notebooks and library are not in sync: run nbdev_export and commit."
  finish 1 "library out of sync"
fi

step "installing the jax and torch CPU builds"
python -m pip install -q "jax[cpu]==0.10.2" || finish 1 "installing jax"
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
if python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=15)" \
    "$TORCH_CPU_INDEX" 2>/dev/null; then
  echo "torch: from PyTorch's CPU wheel index"
  python -m pip install -q "torch==2.13.0" --index-url "$TORCH_CPU_INDEX" || finish 1 "installing torch"
else
  echo "torch: PyTorch's CPU wheel index is unreachable; installing torch==2.13.0 from the configured package index"
  python -m pip install -q "torch==2.13.0" || finish 1 "installing torch"
fi
python -c "import torch; print('torch', torch.__version__, 'installed:',
           'the CPU build' if torch.version.cuda is None else f'a CUDA {torch.version.cuda} build')"

step "nbdev_test: every notebook, top to bottom"
nbdev_test --n_workers 2 > "$RESULTS/nbdev_test.log" 2>&1
nb_status=$?
grep -v -e MissingIDFieldWarning -e "_validate(nbdict" "$RESULTS/nbdev_test.log"
notebooks=$(find nbs -name "*.ipynb" ! -name "_*" ! -path "*/.*" | wc -l)
if [ "$nb_status" -ne 0 ]; then
  NOTEBOOKS_FAILED=$(grep -c -P '^\t\S+\.ipynb' "$RESULTS/nbdev_test.log" || true)
  [ "$NOTEBOOKS_FAILED" -gt 0 ] || NOTEBOOKS_FAILED=1
fi
NOTEBOOKS_PASSED=$((notebooks - NOTEBOOKS_FAILED))

step "pytest on tensorflow"
KERAS_BACKEND=tensorflow python -m pytest tests -p no:cacheprovider -q -rfE --junitxml="$RESULTS/tensorflow.xml"
status=$?

for backend in jax torch; do
  step "pytest -m backends on $backend"
  KERAS_BACKEND=$backend python -m pytest tests -m backends -p no:cacheprovider -q -rfE \
    --junitxml="$RESULTS/$backend.xml" || status=1
done

[ "$NOTEBOOKS_FAILED" -eq 0 ] || status=1
finish "$status"
