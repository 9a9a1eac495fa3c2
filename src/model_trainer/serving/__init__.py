"""A saved model and its card, the HTTP app, deployment checks, ONNX."""
