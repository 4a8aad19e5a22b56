"""What the benchmark scripts share: one run of a script in a fresh Python process, on a chosen Keras backend."""
import json
import os
import subprocess
import sys


def run_fresh(script: str, config: dict, backend: str) -> dict:
    """Run `script` with `config` (as JSON in argv[1]) in a fresh process on `backend`; the JSON its last output
    line holds, or an `error` entry with the last line of its error output."""
    # one thread each: the numbers do not depend on it, and on a shared CPU more threads only spin
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(config)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])
