"""Training data: the 128x128 face crop, the SRDG degradation, the cached CelebA splits."""
