"""Training and export commands for srdgd's own models (score, classifiers, LR attributes)."""
