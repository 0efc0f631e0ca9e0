"""The one pin of llama.cpp: the llama-cpp-python release whose vendored llama.cpp we build.

Everything that names this version reads it from here: the binary cache path, the
engine image tag, the flag data file, the bundle definitions and build scripts
(checked against it by tests/engines/test_version_pins.py).
"""

VERSION = "0.3.36"
PROGRAM = "llama-server"
DEFAULT_IMAGE = f"cortex/llamacpp-cpu:{VERSION}"
