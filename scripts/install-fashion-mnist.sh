#!/usr/bin/env bash
# Install Fashion-MNIST's IDX files from Debian's package when apt can (tests that need them skip
# otherwise, saying why).
set -euo pipefail
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
else
    echo "note: cannot install Debian's dataset-fashion-mnist here (needs apt-get as root); Fashion-MNIST tests will skip" >&2
fi
