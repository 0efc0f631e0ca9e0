"""A toy third engine, whole in this one package: proof that adding an engine is one package.

Its program is the test double of an OpenAI-style server (tests/doubles/vllm_test_double.py):
`python vllm_test_double.py MODEL --port … --served-model-name …`, which reads its key from
VLLM_API_KEY. Nothing in cortexctl or the server names this engine: tests add it with
`cortexctl.engines.registry.register_engine(ENGINE)`.
"""

from tests.toy_engine.adapter import ToyEngine

ENGINE = ToyEngine()
