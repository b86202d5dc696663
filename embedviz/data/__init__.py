"""Data in: image collections and their decoding, class indexes, features made elsewhere, the feature-set
type and its folder, the built-in demo, and which server folders a user may read."""
