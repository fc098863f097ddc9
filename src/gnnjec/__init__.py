"""gnnjec: jet energy corrections with graph neural networks, from NanoAOD to ONNX and physics plots."""

__version__ = "0.1.0"
