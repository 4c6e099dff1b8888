#!/usr/bin/env bash
# Set up synthaug in a virtual environment: scripts/install.sh VENV [EXTRAS]
#
# torch comes first and on its own: a plain `pip install torch` (or any package that pulls
# torchvision) brings a multi-GB CUDA build. On a machine without an NVIDIA GPU we take the CPU
# wheel named by SYNTHAUG_TORCH (default torch==2.13.0, the CPU wheel this project's machines
# carry); with a GPU, pip's usual CUDA build. Once torch satisfies torch>=2.10, installing
# synthaug adds nothing to it.
set -euo pipefail
venv=${1:-.venv}
extras=${2:-}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        "${pip[@]}" "torch>=2.10"
    else
        "${pip[@]}" "${SYNTHAUG_TORCH:-torch==2.13.0}"
    fi
fi
"${pip[@]}" -e ".${extras:+[$extras]}"
