"""Features out: models and their preprocessing, layers, pooling, the local and Ray engines, and the
content-addressed feature store."""
