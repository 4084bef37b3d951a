"""srdgd model toolchain: importers, converters, training and ONNX export.

Run from the repository root with Debian's interpreter: /usr/bin/python3 -m models COMMAND ...
"""
