"""The kinds of data headstart learns from. Each modality owns what differs (its data
sources and decoding, inspection, preprocessing or tokenisation, the pretrained encoder,
augmentation, how an example is shown); :mod:`headstart.core` owns the rest."""
