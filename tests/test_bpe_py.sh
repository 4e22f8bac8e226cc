#!/usr/bin/env bash
# tools/loompy/bpe.py's Python reference encoder must give llama.cpp's ids on the whole
# tokenizer corpus (the same fixtures test_tokenizer checks the C tokenizer against).
# Needs /usr/bin/python3 with NumPy (scripts/setup --python); without it, says so and skips.
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  echo "skipped: /usr/bin/python3 has no numpy (scripts/setup --python)"; echo "0 passed, 0 failed"; exit 0
fi
if /usr/bin/python3 tools/parity/check_bpe_py.py tests/data/tokenizer; then
  echo "1 passed, 0 failed"
else
  echo "0 passed, 1 failed"; exit 1
fi
