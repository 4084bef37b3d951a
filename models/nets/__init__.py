"""Network definitions: NCSN++ (the SDE-SR import), the U-Net score model, the released SRDG classifiers."""
