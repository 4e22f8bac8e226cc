"""loompy: loom's Python side — the PyTorch reference of every component, training, and
GGUF export. Run with Debian's /usr/bin/python3 (torch 1.13, numpy)."""
