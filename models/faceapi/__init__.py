"""face-api (vladmandic/face-api) weights: TF.js reader, PyTorch and NumPy re-implementations, alignment."""
