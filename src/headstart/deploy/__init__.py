"""Shipping a trained run: ONNX export checked by ONNX Runtime (:mod:`.export`), a client that
predicts with the exported graph and no PyTorch (:mod:`.onnx_model`), and the HTTP prediction
server (:mod:`.serve`)."""
